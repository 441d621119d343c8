//! One module per subcommand; this one holds what they all start from: the profile, its
//! database, the scripts and the versions given.

pub mod apply;
pub mod baseline;
pub mod plan;
pub mod repair;
pub mod status;

use anyhow::{Context as _, bail};
use upgrade_shared::profile::Profile;
use upgrade_shared::version::Version;

use crate::client::Client;
use crate::db::{Db, with_session};
use crate::history::{self, Row};
use crate::runner;
use crate::scripts::{self, Origin, Script};
use crate::{Args, Command, Target};

/// What every subcommand starts from.
#[derive(Debug)]
pub struct Setup {
    pub profile: Profile,
    /// The component whose database the scripts change.
    pub component: String,
    /// The database the scripts run in (the component's first).
    pub database: String,
    pub origin: Origin,
    pub scripts: Vec<Script>,
}

/// Loads the profile and the scripts; every problem here is bad input (exit 2).
pub fn setup(args: &Args, target: &Target) -> anyhow::Result<Setup> {
    let profile = upgrade_shared::profile::builtin(&target.profile)?;
    let Some(sql) = &profile.sql else {
        bail!(
            "profile {} has no schema scripts (no `sql:` section)",
            profile.name
        );
    };
    let component = profile.component(&sql.component).with_context(|| {
        format!(
            "profile {}: sql.component {} is not a component",
            profile.name, sql.component
        )
    })?;
    let Some(database) = component
        .database
        .as_ref()
        .and_then(|d| d.databases.first())
        .cloned()
    else {
        bail!(
            "profile {}: component {} names no database",
            profile.name,
            component.name
        );
    };
    let origin = match &args.scripts_dir {
        Some(dir) => Origin::Directory {
            path: dir.display().to_string(),
        },
        None => Origin::Embedded {
            dir: sql.dir.clone(),
        },
    };
    let scripts = scripts::load(&origin)?;
    Ok(Setup {
        component: component.name.clone(),
        profile,
        database,
        origin,
        scripts,
    })
}

/// Parses a version flag, checking the profile knows it.
pub fn version(profile: &Profile, flag: &str, text: &str) -> anyhow::Result<Version> {
    let v = Version::parse(text).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))?;
    profile
        .check_version(&v)
        .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))?;
    Ok(v)
}

/// The application's running version through the profile, or why it could not be read.
pub async fn running_version(
    kube: &kube::Client,
    namespace: &str,
    profile: &Profile,
) -> Result<Version, String> {
    match crate::start::running_version(kube, namespace, profile).await {
        Ok(found) => found,
        Err(e) => Err(format!("reading the workloads: {e:#}")),
    }
}

/// Whether the running version is one the chain may start from: below `to`, with no
/// `--from` and no history to say otherwise. Only then is the schema read for its fingerprint.
pub fn needs_fit(
    flag: Option<&Version>,
    history: Option<&Version>,
    running: &Result<Version, String>,
    to: &Version,
) -> bool {
    flag.is_none() && history.is_none() && running.as_ref().is_ok_and(|v| v.cmp_numbers(to).is_lt())
}

/// Where the chain starts ([`crate::start::starting_version`]), said on standard error when
/// it was not given; no known start is bad input. `columns` is the schema's column listing
/// ([`crate::fingerprint::columns_query`]) when [`needs_fit`] asked for it.
pub fn starting_version(
    setup: &Setup,
    flag: Option<Version>,
    history: Option<Version>,
    running: Result<Version, String>,
    columns: Option<Vec<String>>,
    to: &Version,
) -> anyhow::Result<Version> {
    let running = running.map(|v| {
        let schema = crate::fingerprint::parse_columns(&columns.unwrap_or_default());
        let fit = crate::fingerprint::fit(&setup.profile, &v, &schema);
        (v, fit)
    });
    let (from, source) =
        crate::start::starting_version(flag, history, running, to, &setup.database)
            .map_err(anyhow::Error::msg)?;
    if source != crate::start::Source::Flag {
        eprintln!(
            "{} is at {} (from {})",
            setup.database,
            from.canonical(),
            source.describe()
        );
    }
    Ok(from)
}

/// Dispatches to the subcommand.
pub async fn run(args: Args) -> anyhow::Result<u8> {
    match &args.command {
        Command::Plan { target, from, to } => plan::run(&args, target, from.as_deref(), to).await,
        Command::Apply {
            target,
            from,
            to,
            backup,
            no_backup: _,
            yes,
        } => {
            let opts = apply::Options {
                from: from.as_deref(),
                to,
                backup: backup.as_deref(),
                yes: *yes,
                dry_run: args.dry_run.is_dry(),
            };
            apply::run(&args, target, opts).await
        }
        Command::Status { target } => status::run(&args, target).await,
        Command::Repair {
            target,
            script,
            reason,
            yes,
        } => repair::run(&args, target, script, reason, *yes).await,
        Command::Baseline {
            target,
            version,
            yes,
        } => baseline::run(&args, target, version, *yes).await,
    }
}

/// The history table of a database as a command that writes it found it, holding the lock.
pub struct History {
    /// The table's qualified name.
    pub table: String,
    /// Whether the table exists yet (it is created on first use).
    pub exists: bool,
    /// Its rows, oldest first (none before the table exists).
    pub rows: Vec<Row>,
}

/// Runs `work` in one session on `db` that holds the migration lock, with the history read
/// under it: the commands that write the history (`apply`, `repair`, `baseline`) start here.
/// While another run holds the lock, this waits up to `--timeout` (an hour by default), naming
/// the holder, then refuses with exit 1 (`refusing to VERB: …`).
pub async fn with_locked_history(
    args: &Args,
    db: &Db,
    database: &str,
    verb: &str,
    work: impl AsyncFnOnce(&mut Client, History) -> anyhow::Result<u8>,
) -> anyhow::Result<u8> {
    let lock = runner::lock_name(database);
    let wait = args
        .timeout
        .0
        .unwrap_or(std::time::Duration::from_secs(3600));
    with_session(db, async |client: &mut Client| -> anyhow::Result<u8> {
        if let Some(h) = runner::parse_holder(
            &client
                .query("looking for the lock's holder", &runner::holder_query(&lock))
                .await?,
        ) {
            eprintln!(
                "waiting up to {}s for the migration lock, held by connection {} ({}@{}, busy for {}s)",
                wait.as_secs(),
                h.connection,
                h.user,
                h.host,
                h.seconds
            );
        }
        if !runner::lock(client, &lock, wait).await? {
            eprintln!(
                "refusing to {verb}: another migration of {database} holds the lock {lock:?} and kept it for {}s; see `kubectl upgrade-migrate-db status`",
                wait.as_secs()
            );
            return Ok(upgrade_shared::exit::FINDINGS);
        }
        let table = history::table(database);
        let exists = client
            .query("looking for the history table", &history::exists(database))
            .await?
            .first()
            .is_some_and(|c| c != "0");
        let rows = if exists {
            history::parse_rows(
                &client
                    .query("reading the history", &history::select(&table))
                    .await?
                    .join("\n"),
            )?
        } else {
            Vec::new()
        };
        work(
            client,
            History {
                table,
                exists,
                rows,
            },
        )
        .await
    })
    .await
}

/// Who runs the command, as the history records it: the local user's name (`USER`,
/// `LOGNAME`, else the password database's entry for the process's uid).
pub fn who() -> String {
    use std::os::unix::fs::MetadataExt as _;
    if let Some(user) = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.is_empty())
    {
        return user;
    }
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return "unknown".to_string();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.get(2) == Some(&uid.to_string().as_str())).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}
