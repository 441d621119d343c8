//! One module per subcommand; this one holds what they all start from: the profile, its
//! database, the scripts and the versions given.

pub mod plan;

use anyhow::{Context as _, bail};
use upgrade_shared::profile::Profile;
use upgrade_shared::version::Version;

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

/// Dispatches to the subcommand.
pub async fn run(args: Args) -> anyhow::Result<u8> {
    match &args.command {
        Command::Plan { target, from, to } => plan::run(&args, target, from.as_deref(), to).await,
        _ => bail!("not implemented yet"),
    }
}
