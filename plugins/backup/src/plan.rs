//! Plans, computed by pure code from what the command line asked for and what the server said:
//! which databases and tables, which dump options, what a restore replaces. The executors in
//! `commands/` only carry them out, and the unit tests read them without a cluster.

use std::collections::BTreeMap;

use upgrade_shared::backup_manifest::{Compression, Mode};
use upgrade_shared::mysql::{DatabaseInfo, ServerInfo};

/// Databases the server always has and a dump of "everything" leaves out (mysqldump does the
/// same for the first two; `sys` is views over performance_schema).
pub const SYSTEM_DATABASES: &[&str] = &["information_schema", "performance_schema", "sys"];

/// What `dump` was asked for.
#[derive(Debug, Clone, Default)]
pub struct DumpRequest {
    pub databases: Vec<String>,
    pub all_databases: bool,
    pub data_only: bool,
    pub output: Option<String>,
    pub to_volume: Option<String>,
    pub compress: Option<Compression>,
}

/// A dump to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpPlan {
    pub databases: Vec<String>,
    pub mode: Mode,
    /// `db.table` left out.
    pub ignored: Vec<String>,
    /// The dump program's options (then `--databases` and the names).
    pub flags: Vec<String>,
    pub output: Option<String>,
    pub to_volume: Option<String>,
    pub compress: Option<Compression>,
}

impl DumpPlan {
    /// The dump program's arguments.
    pub fn args(&self) -> Vec<String> {
        let mut args = self.flags.clone();
        args.extend(self.ignored.iter().map(|t| format!("--ignore-table={t}")));
        args.push("--databases".into());
        args.extend(self.databases.iter().cloned());
        args
    }
}

/// Why a request cannot be planned (bad input: exit 2).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("{0}")]
    Input(String),
}

fn input(msg: impl Into<String>) -> PlanError {
    PlanError::Input(msg.into())
}

/// Plans a dump. `existing` lists the server's databases; `profile` is the profile's view of
/// the database, when the location came from a profile.
pub fn plan_dump(
    req: &DumpRequest,
    profile: Option<&DatabaseInfo>,
    server: &ServerInfo,
    existing: &[String],
) -> Result<DumpPlan, PlanError> {
    if req.output.is_none() && req.to_volume.is_none() {
        return Err(input(
            "name where the dump goes: --output FILE, --to-volume PATH, or both",
        ));
    }
    if req.compress.is_some() && req.output.is_none() {
        return Err(input(
            "--compress applies to --output; the copy on the volume is plain SQL",
        ));
    }
    if req.all_databases && !req.databases.is_empty() {
        return Err(input("use --database or --all-databases, not both"));
    }
    let databases: Vec<String> = if req.all_databases {
        existing
            .iter()
            .filter(|d| !SYSTEM_DATABASES.contains(&d.as_str()))
            .cloned()
            .collect()
    } else if !req.databases.is_empty() {
        req.databases.clone()
    } else if let Some(p) = profile {
        p.databases.clone()
    } else {
        return Err(input(
            "name the databases to dump: --database NAME (repeatable), --all-databases, or --profile",
        ));
    };
    let mut seen = std::collections::BTreeSet::new();
    for d in &databases {
        upgrade_shared::mysql::check_identifier("database", d).map_err(|e| input(e.to_string()))?;
        if !seen.insert(d) {
            return Err(input(format!("database {d} is named twice")));
        }
    }
    let missing: Vec<&String> = databases.iter().filter(|d| !existing.contains(d)).collect();
    if let Some(d) = missing.first() {
        let have: Vec<&str> = existing
            .iter()
            .map(String::as_str)
            .filter(|d| !SYSTEM_DATABASES.contains(d))
            .collect();
        return Err(input(format!(
            "database {d} does not exist on the server (it has: {})",
            if have.is_empty() {
                "none".to_string()
            } else {
                have.join(", ")
            }
        )));
    }
    let mut flags: Vec<String> = vec![
        "--single-transaction".into(),
        "--hex-blob".into(),
        // The trailer proves the dump ended; a container's my.cnf cannot turn it off.
        "--comments".into(),
        "--dump-date".into(),
        "--default-character-set=utf8mb4".into(),
    ];
    let mode = if req.data_only {
        flags.extend(
            [
                "--no-create-info",
                "--no-create-db",
                "--skip-triggers",
                "--skip-routines",
                "--skip-events",
            ]
            .map(String::from),
        );
        Mode::DataOnly
    } else {
        flags.extend(["--routines", "--events", "--triggers"].map(String::from));
        Mode::Full
    };
    if !server.mariadb && server.gtid_mode.as_deref().is_some_and(|m| m != "OFF") {
        flags.push("--set-gtid-purged=OFF".into());
    }
    let ignored = if req.data_only {
        let tables = profile
            .map(|p| p.version_specific_tables.clone())
            .unwrap_or_default();
        databases
            .iter()
            .filter(|d| profile.is_some_and(|p| p.databases.contains(d)))
            .flat_map(|d| tables.iter().map(move |t| format!("{d}.{t}")))
            .collect()
    } else {
        Vec::new()
    };
    Ok(DumpPlan {
        databases,
        mode,
        ignored,
        flags,
        output: req.output.clone(),
        to_volume: req.to_volume.clone(),
        compress: req.compress,
    })
}

/// Checks a `--to-volume` path: absolute, plain, and under one of the container's volume
/// mounts (elsewhere it would land in the container's own layer and go with the pod).
pub fn check_volume_path(path: &str, mounts: &[String]) -> Result<(), PlanError> {
    let bad = path.is_empty()
        || !path.starts_with('/')
        || path.ends_with('/')
        || path.split('/').any(|p| p == ".." || p == ".")
        || path.chars().any(|c| c.is_control());
    if bad {
        return Err(input(format!(
            "invalid --to-volume {path:?}: use an absolute file path inside the container"
        )));
    }
    let under = mounts.iter().any(|m| {
        let m = m.trim_end_matches('/');
        path.strip_prefix(m)
            .is_some_and(|rest| rest.starts_with('/'))
    });
    if !under {
        return Err(input(format!(
            "--to-volume {path} is not on a volume of the container (mounted: {}); the file would be lost with the pod",
            if mounts.is_empty() {
                "nothing".to_string()
            } else {
                mounts.join(", ")
            }
        )));
    }
    Ok(())
}

/// Which database of a dump goes where in a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The database's name in the dump.
    pub from: String,
    /// The database it is restored into.
    pub into: String,
}

/// The state of one target database on the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Live {
    pub exists: bool,
    /// Rows per table now.
    pub tables: BTreeMap<String, u64>,
}

/// What a restore does to one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create it and load the full dump.
    Create,
    /// Load a full dump into the existing, empty database.
    LoadEmpty,
    /// Drop the database (its tables and rows) and load the full dump.
    Replace { tables: usize, rows: u64 },
    /// Load rows into the existing schema.
    LoadData,
    /// Empty these tables first, then load rows.
    ReplaceData { tables: Vec<String>, rows: u64 },
}

/// A restore step for one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreStep {
    pub target: Target,
    pub action: Action,
}

/// Maps `--database` onto the dump's databases: without it, each into its own name; with a
/// name the dump holds, that one; with another name and a one-database dump, into that name.
pub fn targets(dumped: &[String], database: Option<&str>) -> Result<Vec<Target>, PlanError> {
    match database {
        None => Ok(dumped
            .iter()
            .map(|d| Target {
                from: d.clone(),
                into: d.clone(),
            })
            .collect()),
        Some(d) => {
            upgrade_shared::mysql::check_identifier("database", d)
                .map_err(|e| input(e.to_string()))?;
            if dumped.iter().any(|x| x == d) {
                Ok(vec![Target {
                    from: d.into(),
                    into: d.into(),
                }])
            } else if let [only] = dumped {
                Ok(vec![Target {
                    from: only.clone(),
                    into: d.into(),
                }])
            } else {
                Err(input(format!(
                    "the dump holds {}; --database must name one of them",
                    dumped.join(", ")
                )))
            }
        }
    }
}

/// A refusal: the restore would overwrite data the user did not agree to replace (exit 1).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Refusal(pub String);

/// Plans the restore of one database from what is there now.
pub fn plan_restore(
    target: &Target,
    mode: Mode,
    dump_tables: &[String],
    live: &Live,
    replace: bool,
) -> Result<RestoreStep, Refusal> {
    let rows: u64 = live.tables.values().sum();
    let action = match mode {
        Mode::Full if !live.exists => Action::Create,
        Mode::Full if live.tables.is_empty() => Action::LoadEmpty,
        Mode::Full if replace => Action::Replace {
            tables: live.tables.len(),
            rows,
        },
        Mode::Full => {
            return Err(Refusal(format!(
                "database {} is not empty ({} tables, {rows} rows); pass --replace to drop and replace it",
                target.into,
                live.tables.len()
            )));
        }
        Mode::DataOnly => {
            if !live.exists {
                return Err(Refusal(format!(
                    "database {} does not exist: a data-only dump loads into an existing schema (install the application first)",
                    target.into
                )));
            }
            let missing: Vec<&String> = dump_tables
                .iter()
                .filter(|t| !live.tables.contains_key(*t))
                .collect();
            if !missing.is_empty() {
                return Err(Refusal(format!(
                    "database {} has no table {}: the schema does not match the dump",
                    target.into,
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let full: Vec<String> = dump_tables
                .iter()
                .filter(|t| live.tables.get(*t).is_some_and(|n| *n > 0))
                .cloned()
                .collect();
            let full_rows: u64 = full.iter().map(|t| live.tables[t]).sum();
            if full.is_empty() {
                Action::LoadData
            } else if replace {
                Action::ReplaceData {
                    tables: full,
                    rows: full_rows,
                }
            } else {
                return Err(Refusal(format!(
                    "tables of database {} already hold rows ({}: {full_rows} rows); pass --replace to empty them first",
                    target.into,
                    full.join(", ")
                )));
            }
        }
    };
    Ok(RestoreStep {
        target: target.clone(),
        action,
    })
}

impl RestoreStep {
    /// One line for the plan.
    pub fn describe(&self) -> String {
        let t = &self.target;
        let into = if t.from == t.into {
            format!("database {}", t.into)
        } else {
            format!("{} into database {}", t.from, t.into)
        };
        match &self.action {
            Action::Create => format!("create {into} and load the full dump"),
            Action::LoadEmpty => format!("load the full dump into the empty {into}"),
            Action::Replace { tables, rows } => format!(
                "DROP {into} ({tables} tables, {rows} rows are replaced) and load the full dump"
            ),
            Action::LoadData => format!("load the rows into the existing tables of {into}"),
            Action::ReplaceData { tables, rows } => format!(
                "empty {} of {into} ({rows} rows are replaced) and load the rows",
                tables.join(", ")
            ),
        }
    }

    /// True for steps that remove data.
    pub fn destructive(&self) -> bool {
        matches!(
            self.action,
            Action::Replace { .. } | Action::ReplaceData { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(mariadb: bool, gtid: Option<&str>) -> ServerInfo {
        ServerInfo {
            version: "x".into(),
            comment: String::new(),
            mariadb,
            gtid_mode: gtid.map(str::to_string),
        }
    }

    fn fate() -> DatabaseInfo {
        DatabaseInfo {
            databases: vec!["eggroll_meta".into()],
            version_specific_tables: vec!["server_node".into(), "t_engine_registry".into()],
            data_dir: Some("/var/lib/mysql".into()),
        }
    }

    fn have() -> Vec<String> {
        [
            "eggroll_meta",
            "mysql",
            "information_schema",
            "sys",
            "extra",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn a_full_dump_of_the_profile_databases() {
        let req = DumpRequest {
            output: Some("f.sql".into()),
            ..DumpRequest::default()
        };
        let p = plan_dump(&req, Some(&fate()), &server(true, None), &have()).unwrap();
        assert_eq!(p.mode, Mode::Full);
        assert_eq!(
            p.args(),
            [
                "--single-transaction",
                "--hex-blob",
                "--comments",
                "--dump-date",
                "--default-character-set=utf8mb4",
                "--routines",
                "--events",
                "--triggers",
                "--databases",
                "eggroll_meta"
            ]
        );
    }

    #[test]
    fn data_only_leaves_out_the_version_specific_tables_as_the_seed_does() {
        let req = DumpRequest {
            data_only: true,
            output: Some("d.sql".into()),
            ..DumpRequest::default()
        };
        let p = plan_dump(&req, Some(&fate()), &server(true, None), &have()).unwrap();
        assert_eq!(p.mode, Mode::DataOnly);
        assert!(p.flags.contains(&"--no-create-info".to_string()));
        assert!(!p.flags.contains(&"--routines".to_string()));
        assert_eq!(
            p.ignored,
            ["eggroll_meta.server_node", "eggroll_meta.t_engine_registry"]
        );
        assert!(
            p.args()
                .contains(&"--ignore-table=eggroll_meta.server_node".to_string())
        );
        // Without a profile nothing is known to be version-specific.
        let req = DumpRequest {
            databases: vec!["eggroll_meta".into()],
            ..req
        };
        let p = plan_dump(&req, None, &server(true, None), &have()).unwrap();
        assert!(p.ignored.is_empty());
    }

    #[test]
    fn gtids_only_on_mysql_servers_that_have_them() {
        let req = DumpRequest {
            databases: vec!["eggroll_meta".into()],
            output: Some("f".into()),
            ..DumpRequest::default()
        };
        let gtid = |s: ServerInfo| {
            plan_dump(&req, None, &s, &have())
                .unwrap()
                .flags
                .contains(&"--set-gtid-purged=OFF".to_string())
        };
        assert!(gtid(server(false, Some("ON"))));
        assert!(!gtid(server(false, Some("OFF"))));
        assert!(!gtid(server(true, None)));
    }

    #[test]
    fn all_databases_and_bad_requests() {
        let req = DumpRequest {
            all_databases: true,
            output: Some("f".into()),
            ..DumpRequest::default()
        };
        let p = plan_dump(&req, None, &server(true, None), &have()).unwrap();
        assert_eq!(p.databases, ["eggroll_meta", "mysql", "extra"]);
        let err = |r: DumpRequest| {
            plan_dump(&r, None, &server(true, None), &have())
                .unwrap_err()
                .to_string()
        };
        assert!(
            err(DumpRequest {
                databases: vec!["nope".into()],
                output: Some("f".into()),
                ..DumpRequest::default()
            })
            .starts_with(
                "database nope does not exist on the server (it has: eggroll_meta, mysql, extra)"
            )
        );
        assert!(err(DumpRequest::default()).starts_with("name where the dump goes"));
        assert!(
            err(DumpRequest {
                databases: vec!["a;b".into()],
                output: Some("f".into()),
                ..DumpRequest::default()
            })
            .starts_with("invalid database name")
        );
        assert!(
            err(DumpRequest {
                databases: vec!["x".into()],
                to_volume: Some("/v/x".into()),
                compress: Some(Compression::Gzip),
                ..DumpRequest::default()
            })
            .starts_with("--compress applies to --output")
        );
    }

    #[test]
    fn volume_paths_must_be_on_a_volume() {
        let mounts = vec!["/var/lib/mysql".to_string()];
        assert!(check_volume_path("/var/lib/mysql/snapshot.sql", &mounts).is_ok());
        assert!(
            check_volume_path("/tmp/snapshot.sql", &mounts)
                .unwrap_err()
                .to_string()
                .contains("not on a volume")
        );
        assert!(check_volume_path("/var/lib/mysql/../x", &mounts).is_err());
        assert!(check_volume_path("relative.sql", &mounts).is_err());
        assert!(check_volume_path("/var/lib/mysqlx/a", &mounts).is_err());
    }

    #[test]
    fn restores_refuse_to_overwrite_without_replace() {
        let t = Target {
            from: "eggroll_meta".into(),
            into: "eggroll_meta".into(),
        };
        let tables = vec!["job".to_string(), "model".to_string()];
        let empty = Live {
            exists: true,
            tables: BTreeMap::new(),
        };
        let full = Live {
            exists: true,
            tables: [("job".to_string(), 3u64), ("model".to_string(), 0)].into(),
        };
        assert_eq!(
            plan_restore(&t, Mode::Full, &tables, &Live::default(), false)
                .unwrap()
                .action,
            Action::Create
        );
        assert_eq!(
            plan_restore(&t, Mode::Full, &tables, &empty, false)
                .unwrap()
                .action,
            Action::LoadEmpty
        );
        assert!(
            plan_restore(&t, Mode::Full, &tables, &full, false)
                .unwrap_err()
                .0
                .contains("pass --replace")
        );
        let r = plan_restore(&t, Mode::Full, &tables, &full, true).unwrap();
        assert_eq!(r.action, Action::Replace { tables: 2, rows: 3 });
        assert!(r.destructive());
        assert!(
            r.describe()
                .starts_with("DROP database eggroll_meta (2 tables, 3 rows")
        );
        assert!(
            plan_restore(&t, Mode::DataOnly, &tables, &Live::default(), false)
                .unwrap_err()
                .0
                .contains("does not exist")
        );
        let r = plan_restore(&t, Mode::DataOnly, &tables, &full, true).unwrap();
        assert_eq!(
            r.action,
            Action::ReplaceData {
                tables: vec!["job".into()],
                rows: 3
            }
        );
        assert!(
            plan_restore(&t, Mode::DataOnly, &["other".to_string()], &full, true)
                .unwrap_err()
                .0
                .contains("has no table other")
        );
    }

    #[test]
    fn database_mapping() {
        let one = vec!["eggroll_meta".to_string()];
        assert_eq!(
            targets(&one, Some("scratch")).unwrap(),
            vec![Target {
                from: "eggroll_meta".into(),
                into: "scratch".into()
            }]
        );
        let two = vec!["a".to_string(), "b".to_string()];
        assert_eq!(targets(&two, None).unwrap().len(), 2);
        assert_eq!(targets(&two, Some("b")).unwrap()[0].into, "b");
        assert!(targets(&two, Some("c")).is_err());
    }
}
