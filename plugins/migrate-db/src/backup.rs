//! The backup `apply` relies on: a verified full `upgrade-backup` dump of this database whose
//! file still matches its manifest, taken after the database's last write — as far as the live
//! tables and their exact row counts can tell, the history table left aside (a failed earlier
//! run of the same migration is not a write that makes the backup stale).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use upgrade_shared::backup_manifest::{Manifest, Mode};

use crate::history;

/// What the history records for a run without a backup.
pub const NONE: &str = "none: --no-backup";

/// A manifest that passed the file checks.
#[derive(Debug, Clone)]
pub struct Backup {
    pub manifest_path: PathBuf,
    pub manifest: Manifest,
    /// How the history names it: `PATH sha256:HEX`.
    pub recorded: String,
}

/// Reads the manifest and checks everything that needs no database: verified, full, of this
/// database and namespace, and the dump file beside it unchanged. Each problem is one line.
pub fn check_file(path: &Path, namespace: &str, database: &str) -> Result<Backup, Vec<String>> {
    let manifest = Manifest::read(path).map_err(|e| vec![e.to_string()])?;
    let mut problems = static_problems(&manifest, namespace, database);
    let dump = path
        .to_str()
        .and_then(|p| p.strip_suffix(".manifest.json"))
        .map(PathBuf::from);
    match dump {
        Some(file) if file.exists() => match manifest.check_file(&file) {
            Ok(diffs) => problems.extend(diffs.iter().map(|d| format!("{}: {d}", file.display()))),
            Err(e) => problems.push(e.to_string()),
        },
        Some(file) if manifest.location.local.is_some() => problems.push(format!(
            "{} is missing: the dump the manifest describes must be beside it",
            file.display()
        )),
        // A dump kept only on the database's volume is checked by its manifest alone.
        Some(_) => {}
        None => problems.push(format!(
            "{}: a backup manifest is named FILE.manifest.json",
            path.display()
        )),
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let recorded = format!("{} sha256:{}", path.display(), manifest.sha256);
    Ok(Backup {
        manifest_path: path.to_path_buf(),
        manifest,
        recorded,
    })
}

/// The checks of a manifest's own fields.
pub fn static_problems(m: &Manifest, namespace: &str, database: &str) -> Vec<String> {
    let mut out = Vec::new();
    if !m.verified {
        out.push(format!("{} is not verified: take a new backup", m.file));
    }
    if m.mode != Mode::Full {
        out.push(format!(
            "{} is a data-only dump: it cannot put the schema back; take a full one",
            m.file
        ));
    }
    if m.namespace != namespace {
        out.push(format!(
            "{} was taken in namespace {}, not {namespace}",
            m.file, m.namespace
        ));
    }
    if !m.databases.iter().any(|d| d.name == database) {
        out.push(format!("{} does not hold database {database}", m.file));
    }
    out
}

/// SQL that prints `table<TAB>rows` (exact counts) for every base table of `database`, given
/// its table names.
pub fn count_query(database: &str, tables: &[String]) -> Option<String> {
    let db = database.replace('`', "``");
    let parts: Vec<String> = tables
        .iter()
        .map(|t| {
            format!(
                "SELECT HEX({}), COUNT(*) FROM `{db}`.`{}`",
                history::literal(t),
                t.replace('`', "``")
            )
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" UNION ALL "))
}

/// SQL that prints the base tables of `database` (hex).
pub fn tables_query(database: &str) -> String {
    format!(
        "SELECT HEX(TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
        history::literal(database)
    )
}

/// Decodes one hex field.
pub fn unhex(s: &str) -> String {
    let bytes: Vec<u8> = (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Differences between the live tables (name → exact rows) and the manifest's: the signs of a
/// write after the backup.
pub fn freshness(m: &Manifest, database: &str, live: &BTreeMap<String, u64>) -> Vec<String> {
    let dumped: BTreeMap<&str, u64> = m
        .databases
        .iter()
        .filter(|d| d.name == database)
        .flat_map(|d| &d.tables)
        .filter(|t| t.name != history::TABLE)
        .map(|t| (t.name.as_str(), t.rows))
        .collect();
    let mut out = Vec::new();
    for (table, rows) in live.iter().filter(|(t, _)| *t != history::TABLE) {
        match dumped.get(table.as_str()) {
            None => out.push(format!("table {table} is not in the backup")),
            Some(d) if d != rows => {
                out.push(format!("table {table} has {rows} rows, the backup {d}"))
            }
            Some(_) => {}
        }
    }
    for table in dumped.keys().filter(|t| !live.contains_key(**t)) {
        out.push(format!("table {table} of the backup is gone"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let json = serde_json::json!({
            "format": 1, "file": "fate-1.7.2.sql",
            "location": {"local": "fate-1.7.2.sql"}, "mode": "full",
            "bytes": 3, "sha256": "abc", "sql_bytes": 3, "sql_sha256": "abc",
            "server": {"version": "10.11.6-MariaDB", "comment": "", "mariadb": true, "gtid_mode": null},
            "databases": [{"name": "eggroll_meta", "tables": [
                {"name": "t_job", "rows": 3}, {"name": "t_task", "rows": 3},
                {"name": "kubectl_upgrade_schema_history", "rows": 1}]}],
            "ignored_tables": [], "flags": ["--single-transaction"], "rows_from": "dump",
            "namespace": "fate-9999", "pod": "mysql-0", "container": "mysql",
            "started": "2026-12-01T09:00:00Z", "finished": "2026-12-01T09:00:01Z",
            "tool": {"name": "kubectl-upgrade-backup", "version": "0.1.0", "dump": "mariadb-dump", "dump_version": "x"},
            "checks": {"exit_status": 0, "trailer": true, "pod_sha256": true, "rows_counted": true},
            "verified": true
        });
        Manifest::from_json("m", &json.to_string()).unwrap()
    }

    #[test]
    fn a_good_manifest_has_no_static_problems() {
        assert!(static_problems(&manifest(), "fate-9999", "eggroll_meta").is_empty());
        let mut m = manifest();
        m.verified = false;
        m.mode = Mode::DataOnly;
        let p = static_problems(&m, "other", "nope");
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0].contains("not verified"));
        assert!(p[1].contains("data-only"));
        assert!(p[2].contains("namespace fate-9999, not other"));
        assert!(p[3].contains("does not hold database nope"));
    }

    #[test]
    fn writes_after_the_backup_are_named() {
        let m = manifest();
        let mut live = BTreeMap::from([("t_job".to_string(), 3), ("t_task".to_string(), 3)]);
        // The history table is left aside either way.
        live.insert(history::TABLE.to_string(), 9);
        assert!(freshness(&m, "eggroll_meta", &live).is_empty());
        live.insert("t_task".into(), 4);
        live.insert("t_new".into(), 0);
        live.remove("t_job");
        assert_eq!(
            freshness(&m, "eggroll_meta", &live),
            [
                "table t_new is not in the backup",
                "table t_task has 4 rows, the backup 3",
                "table t_job of the backup is gone"
            ]
        );
    }

    #[test]
    fn a_missing_dump_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fate-1.7.2.sql.manifest.json");
        std::fs::write(&path, manifest().to_json()).unwrap();
        let err = check_file(&path, "fate-9999", "eggroll_meta").unwrap_err();
        assert!(err[0].contains("is missing"), "{err:?}");
        std::fs::write(dir.path().join("fate-1.7.2.sql"), "abc").unwrap();
        let err = check_file(&path, "fate-9999", "eggroll_meta").unwrap_err();
        assert!(err[0].contains("sha256"), "{err:?}");
        let mut m = manifest();
        m.sha256 =
            upgrade_shared::backup_manifest::hex(&<sha2::Sha256 as sha2::Digest>::digest(b"abc"));
        std::fs::write(&path, m.to_json()).unwrap();
        let ok = check_file(&path, "fate-9999", "eggroll_meta").unwrap();
        assert!(ok.recorded.ends_with(&format!("sha256:{}", m.sha256)));
    }

    #[test]
    fn counts_are_one_query() {
        let q = count_query("db", &["a".into(), "b`c".into()]).unwrap();
        assert_eq!(
            q,
            "SELECT HEX(CONVERT(X'61' USING utf8mb4)), COUNT(*) FROM `db`.`a` UNION ALL SELECT HEX(CONVERT(X'626063' USING utf8mb4)), COUNT(*) FROM `db`.`b``c`"
        );
        assert_eq!(count_query("db", &[]), None);
    }
}
