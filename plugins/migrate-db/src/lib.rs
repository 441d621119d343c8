//! `kubectl upgrade-migrate-db`: an application's schema scripts run in order, once, and
//! provably — a history table in the database, a named lock held by the one session that runs
//! them, statements recorded one by one so a failure says exactly what committed and a re-run
//! resumes at the next statement.

pub mod backup;
pub mod client;
pub mod commands;
pub mod db;
pub mod decide;
pub mod fingerprint;
pub mod history;
pub mod protocol;
pub mod render;
pub mod runner;
pub mod scripts;
pub mod split;
pub mod start;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use upgrade_shared::flags::{DurationArg, KubeArgs, parse_duration};
use upgrade_shared::output::OutputArgs;

/// The version recorded in the history table's `tool_version`.
pub const TOOL_VERSION: &str = concat!("kubectl-upgrade-migrate-db ", env!("CARGO_PKG_VERSION"));

const AFTER_HELP: &str = "\
Examples:
  # What would run from 1.7.2 to 1.9.0: scripts, sha256, statement counts
  kubectl upgrade-migrate-db plan -n fate-9999 --profile fate --from 1.7.2 --to 1.9.0

  # Run them after a verified backup (upgrade-backup dump writes the manifest)
  kubectl upgrade-migrate-db apply -n fate-9999 --profile fate --from 1.7.2 --to 1.9.0 \\
      --backup fate-9999-1.7.2.sql.manifest.json --yes

  # Applied and pending scripts, dirty rows, who holds the lock
  kubectl upgrade-migrate-db status -n fate-9999 --profile fate

  # Rollback: restore the backup the history names
  kubectl upgrade-backup restore fate-9999-1.7.2.sql -n fate-9999 --profile fate --replace --yes

Exit status: 0 done (or nothing to do), 1 a refusal (drift, a dirty row, the lock held, a
stale backup) or a failed statement, 2 bad input or could not run.";

/// Run an application's schema scripts in order, once, provably.
#[derive(Debug, Parser)]
#[command(name = "kubectl-upgrade-migrate-db", bin_name = "kubectl upgrade-migrate-db", version, after_help = AFTER_HELP)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    /// Read the scripts (`FROM-TO.sql`) from this directory instead of the built-in ones.
    #[arg(long, value_name = "DIR", global = true)]
    pub scripts_dir: Option<PathBuf>,
    /// How long to wait for the migration lock another run holds.
    #[arg(long, default_value = "60s", value_parser = parse_duration, global = true)]
    pub timeout: DurationArg,
    /// Print the plan of apply, repair or baseline and stop (`client` and `server` both change
    /// nothing).
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "client", default_value = "none", global = true, value_name = "MODE")]
    pub dry_run: upgrade_shared::flags::DryRun,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The application and where its database is.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The application profile (`fate`): its database component and its scripts.
    #[arg(long, value_name = "NAME")]
    pub profile: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the scripts that lead from one version to another, with sha256 and statements.
    Plan {
        #[command(flatten)]
        target: Target,
        /// The schema's version now (default: what the history table says, else the version
        /// the application runs while it is below --to).
        #[arg(long, value_name = "VERSION")]
        from: Option<String>,
        /// The version to bring the schema to.
        #[arg(long, value_name = "VERSION")]
        to: String,
    },
    /// Run the pending scripts (or the rest of an interrupted one) after a verified backup.
    Apply {
        #[command(flatten)]
        target: Target,
        /// The schema's version now (default: what the history table says, else the version
        /// the application runs while it is below --to).
        #[arg(long, value_name = "VERSION")]
        from: Option<String>,
        /// The version to bring the schema to.
        #[arg(long, value_name = "VERSION")]
        to: String,
        /// The verified `upgrade-backup` manifest of this database, taken after its last write.
        #[arg(
            long,
            value_name = "FILE.manifest.json",
            required_unless_present = "no_backup",
            conflicts_with = "no_backup"
        )]
        backup: Option<PathBuf>,
        /// Run without a backup; the history records that none was taken.
        #[arg(long)]
        no_backup: bool,
        /// Do not ask before changing the schema.
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// Applied and pending scripts, dirty rows and who holds the lock.
    Status {
        #[command(flatten)]
        target: Target,
    },
    /// Accept a dirty or drifted script after looking at the database; records who and why.
    Repair {
        #[command(flatten)]
        target: Target,
        /// The script file (`1.8.0-1.9.0.sql`).
        #[arg(long, value_name = "NAME")]
        script: String,
        /// Why it is right to go on (kept in the history).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// Record the version of a database that predates the history table, after checking its
    /// tables and columns against the profile's fingerprint of that version.
    Baseline {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_name = "VERSION")]
        version: String,
        #[arg(short = 'y', long)]
        yes: bool,
    },
}

/// Runs a command; the exit code on success, an error for exit 2.
pub async fn run(args: Args) -> anyhow::Result<u8> {
    commands::run(args).await
}
