//! `kubectl upgrade-backup`: dumps of the MySQL or MariaDB database in a pod that prove
//! themselves (exit status, trailer, sha256 on both ends, rows per table), checks of those
//! dumps, restores that refuse unverified files, and a listing of a directory of dumps.

pub mod commands;
pub mod inspect;
pub mod plan;
pub mod pod_dump;
pub mod sections;
pub mod sqlfile;
pub mod timing;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use upgrade_shared::backup_manifest::Compression;
use upgrade_shared::flags::{DurationArg, KubeArgs, parse_duration};
use upgrade_shared::mysql::{self, Source, TargetRef};
use upgrade_shared::output::{ColorChoice, Format, OutputArgs};
use upgrade_shared::{exit, names, profile};

const AFTER_HELP: &str = "\
Examples:
  # KubeFATE: a full, verified dump of eggroll_meta before the upgrade
  kubectl upgrade-backup dump -n fate-9999 --profile fate --output fate-9999-v1.8.0.sql

  # v1.7.1 and older: the data only, without the version-specific tables, also on the volume
  kubectl upgrade-backup dump -n fate-9999 --profile fate --data-only \\
      --output data.sql --to-volume /var/lib/mysql/data.sql

  # Prove a dump restores: into a scratch database, rows and CHECKSUM TABLE compared
  kubectl upgrade-backup verify fate-9999-v1.8.0.sql --restore-test -n fate-9999 --profile fate

  # Put it back, writers stopped meanwhile
  kubectl upgrade-backup restore fate-9999-v1.8.0.sql -n fate-9999 --profile fate --replace --quiesce

Exit status: 0 done, 1 a check failed or a restore was refused (nothing changed), 2 bad input or
the command could not run (a failed dump is kept only as FILE.partial).";

/// Verified MySQL/MariaDB dumps and restores of the database in a pod.
#[derive(Debug, Parser)]
#[command(name = "kubectl-upgrade-backup", bin_name = "kubectl upgrade-backup", version, after_help = AFTER_HELP)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    /// Print the plan and stop.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "client", default_value = "none", global = true, value_name = "MODE")]
    pub dry_run: DryRun,
    /// Do not ask before destructive steps.
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
    /// How long a dump, a restore or a wait for pods may take.
    #[arg(long, default_value = "2h", value_parser = parse_duration, global = true)]
    pub timeout: DurationArg,
    /// When to use colours. `NO_COLOR` in the environment always turns them off.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN", global = true)]
    pub color: ColorChoice,
    #[command(flatten)]
    pub kube: KubeArgs,
}

impl Args {
    /// The output flags of the subcommand (`dump` takes `-o` alone: its `--output` is the
    /// dump file).
    pub fn output(&self) -> OutputArgs {
        let format = match &self.command {
            Command::Dump { format, .. }
            | Command::Verify { format, .. }
            | Command::Restore { format, .. }
            | Command::List { format, .. } => *format,
        };
        OutputArgs {
            format,
            color: self.color,
        }
    }
}

pub use upgrade_shared::flags::DryRun;

/// Where the database runs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Where {
    /// Find the database from a built-in profile's database component (`fate`, …).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["profile_file", "target"])]
    pub profile: Option<String>,
    /// Find it from a profile file.
    #[arg(long, value_name = "FILE", conflicts_with = "target")]
    pub profile_file: Option<PathBuf>,
    /// The workload or pod: deploy/NAME, sts/NAME or pod/NAME.
    #[arg(long, value_name = "KIND/NAME")]
    pub target: Option<String>,
    /// The container running the database (default: the MySQL-family one).
    #[arg(short = 'c', long, value_name = "NAME")]
    pub container: Option<String>,
}

impl Where {
    /// The profile, when one was named.
    pub fn profile(&self) -> anyhow::Result<Option<profile::Profile>> {
        Ok(match (&self.profile, &self.profile_file) {
            (Some(name), _) => Some(profile::builtin(name)?),
            (None, Some(path)) => Some(profile::Profile::from_file(path)?),
            (None, None) => None,
        })
    }

    /// The location to look for, or the one-line reason there is none.
    pub fn source(&self) -> anyhow::Result<Source> {
        if let Some(c) = &self.container {
            names::check_name("container", c).map_err(anyhow::Error::msg)?;
        }
        if let Some(t) = &self.target {
            return Ok(Source::Target(TargetRef::parse(t)?));
        }
        match self.profile()? {
            Some(p) => Ok(Source::from_profile(&p)?),
            None => anyhow::bail!(
                "say where the database runs: --profile NAME or --target deploy/NAME|sts/NAME|pod/NAME"
            ),
        }
    }

    /// True when the location was given at all.
    pub fn given(&self) -> bool {
        self.profile.is_some() || self.profile_file.is_some() || self.target.is_some()
    }
}

/// `--compress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compress {
    Gzip,
    Zstd,
}

impl From<Compress> for Compression {
    fn from(c: Compress) -> Self {
        match c {
            Compress::Gzip => Compression::Gzip,
            Compress::Zstd => Compression::Zstd,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dump databases from the database pod, verified, with a manifest beside the file.
    Dump {
        #[command(flatten)]
        at: Where,
        /// A database to dump (repeatable; default: the profile's databases).
        #[arg(long = "database", value_name = "NAME")]
        databases: Vec<String>,
        /// Every database but the server's own information schemas.
        #[arg(long)]
        all_databases: bool,
        /// Rows only, into an existing schema; with --profile the version-specific tables are
        /// left out.
        #[arg(long)]
        data_only: bool,
        /// Stream the dump to this file on this machine.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Also (or only) write it inside the pod, on the database's own volume.
        #[arg(long, value_name = "PATH")]
        to_volume: Option<String>,
        /// Compress --output.
        #[arg(long, value_enum, value_name = "gzip|zstd")]
        compress: Option<Compress>,
        /// Output format of the result.
        #[arg(short = 'o', value_enum, default_value_t = Format::Table, value_name = "table|json|yaml")]
        format: Format,
    },
    /// Check a dump against its manifest; --restore-test restores it into a scratch database.
    Verify {
        /// The dump file (its manifest is FILE.manifest.json).
        file: PathBuf,
        /// Restore into a scratch database on the server, compare rows and CHECKSUM TABLE,
        /// drop it.
        #[arg(long)]
        restore_test: bool,
        #[command(flatten)]
        at: Where,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table, value_name = "table|json|yaml")]
        format: Format,
    },
    /// Restore a verified dump into the database pod.
    Restore {
        /// The dump file.
        file: PathBuf,
        #[command(flatten)]
        at: Where,
        /// The database to restore into (default: the dump's own names).
        #[arg(long, value_name = "NAME")]
        database: Option<String>,
        /// Drop a non-empty database (full dump) or empty its tables (data-only) first.
        #[arg(long)]
        replace: bool,
        /// Scale the profile's other components to zero meanwhile, and back afterwards.
        #[arg(long)]
        quiesce: bool,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table, value_name = "table|json|yaml")]
        format: Format,
    },
    /// List the dumps in a directory with their verification state.
    List {
        /// The directory.
        dir: PathBuf,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table, value_name = "table|json|yaml")]
        format: Format,
    },
}

/// The exit code of an error: refusals and failed checks 1, everything else 2.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let refused = err
        .chain()
        .any(|c| c.downcast_ref::<plan::Refusal>().is_some());
    if refused {
        exit::FINDINGS
    } else {
        exit::code_of(err)
    }
}

/// Runs the command and returns the exit code.
pub async fn run(args: Args) -> anyhow::Result<u8> {
    if let Some(ns) = &args.kube.namespace {
        names::check_name("namespace", ns).map_err(anyhow::Error::msg)?;
    }
    match &args.command {
        Command::Dump { .. } => commands::dump::run(&args).await,
        Command::Verify { .. } => commands::verify::run(&args).await,
        Command::Restore { .. } => commands::restore::run(&args).await,
        Command::List { dir, .. } => commands::list::run(&args, dir),
    }
}

/// Connects and opens a session on the database the flags name.
pub async fn connect(args: &Args, at: &Where) -> anyhow::Result<(kube::Client, mysql::Session)> {
    let source = at.source()?;
    let (client, namespace) = args.kube.client().await?;
    let db = mysql::locate(&client, &namespace, &source, at.container.as_deref()).await?;
    let mut session = mysql::Session::open(&client, db).await?;
    session.timeout = args.timeout.0;
    Ok((client, session))
}
