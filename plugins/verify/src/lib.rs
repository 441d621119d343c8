//! `kubectl upgrade-verify`: proof that nothing was lost. `record` takes a baseline of a
//! namespace before the upgrade; `verify` compares the namespace against it after; `wait`
//! repeats `verify` until it passes or time runs out.

pub mod baseline;
pub mod cluster;
pub mod commands;
pub mod compare;
pub mod digest;
pub mod health;
pub mod record;
pub mod render;
pub mod report;
pub mod rows;
pub mod state;
pub mod summary;
pub mod volumes;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use upgrade_shared::flags::{DurationArg, KubeArgs, parse_duration};
use upgrade_shared::output::{ColorChoice, Format, Styles, color_enabled};
use upgrade_shared::profile::{self, Profile};

const AFTER_HELP: &str = "\
Examples:
  # Before the upgrade: record FATE in fate-9999 (stored in the namespace, and in a file)
  kubectl upgrade-verify record -n fate-9999 --profile fate --output fate-9999-baseline.json

  # After it: every component on v1.9.0, every volume still bound, no rows lost
  kubectl upgrade-verify verify -n fate-9999 --to v1.9.0

  # Wait until the upgrade is complete, showing the component table as it changes
  kubectl upgrade-verify wait -n rok --profile rok --to v2 --timeout 20m --watch

  # A namespace without a profile: workloads, volumes and pods
  kubectl upgrade-verify record -n shop && kubectl upgrade-verify verify -n shop

Exit status: 0 recorded or verified, 1 differences (each named with its object and both
values) or a refusal, 2 could not record or verify.";

/// Proof that an upgrade lost nothing: a baseline before, a comparison after.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-upgrade-verify",
    bin_name = "kubectl upgrade-verify",
    version,
    about = "Record a namespace before an upgrade and prove afterwards that nothing was lost",
    after_help = AFTER_HELP
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    /// When to use colours. `NO_COLOR` in the environment always turns them off.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN", global = true)]
    pub color: ColorChoice,
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// The profile flags every subcommand takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProfileArgs {
    /// Built-in profile of the application (fate, foundationdb, kubeflow, rok). Without one,
    /// the namespace's workloads, volumes and pods are recorded. `verify` and `wait` default
    /// to the profile the baseline was recorded with.
    #[arg(long, value_name = "NAME", conflicts_with = "profile_file")]
    pub profile: Option<String>,
    /// A profile of your own, in the built-in profiles' YAML format.
    #[arg(long, value_name = "PATH")]
    pub profile_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Before the upgrade: record versions, volumes, row counts, health and restarts.
    Record {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Also write the baseline to this file (JSON).
        #[arg(long = "output", value_name = "FILE")]
        file: Option<PathBuf>,
        /// Add a tree digest of each data volume (paths, owners, modes, sizes, mtimes, links
        /// and every file's sha256), read through a short-lived pod that mounts it read-only;
        /// `verify` names each volume whose tree changed. For volumes at rest.
        #[arg(long)]
        deep: bool,
        /// Image of the `--deep` pod: it needs bash, GNU findutils and coreutils.
        #[arg(long, value_name = "IMAGE", default_value = digest::IMAGE, requires = "deep")]
        image: String,
        /// Output format of what was recorded.
        #[arg(short = 'o', value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Replace a baseline already stored in the namespace without asking.
        #[arg(short = 'y', long)]
        yes: bool,
        /// Print what would be recorded and change nothing (`client` and `server` both).
        #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "client", default_value = "none", value_name = "MODE")]
        dry_run: upgrade_shared::flags::DryRun,
    },
    /// After the upgrade: compare the namespace against its baseline.
    Verify {
        #[command(flatten)]
        profile: ProfileArgs,
        /// The version every component must run now.
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// Read the baseline from this file instead of the namespace.
        #[arg(long, value_name = "FILE")]
        baseline: Option<PathBuf>,
        /// Image of the pod that reads the tree digests of a `--deep` baseline (the one the
        /// baseline names is not used: whoever can edit the ConfigMap would pick the image of a
        /// pod that mounts every data volume). It needs bash, GNU findutils and coreutils.
        #[arg(long, value_name = "IMAGE", default_value = digest::IMAGE)]
        image: String,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Repeat `verify` until it passes or the timeout ends.
    Wait {
        #[command(flatten)]
        profile: ProfileArgs,
        /// The version every component must run.
        #[arg(long, value_name = "VERSION")]
        to: String,
        /// Read the baseline from this file instead of the namespace.
        #[arg(long, value_name = "FILE")]
        baseline: Option<PathBuf>,
        /// How long to wait (`30s`, `10m`, `1h`).
        #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
        timeout: DurationArg,
        /// Show the component table (recorded → now) as it changes.
        #[arg(long)]
        watch: bool,
        /// Image of the pod that reads the tree digests of a `--deep` baseline (the one the
        /// baseline names is not used: whoever can edit the ConfigMap would pick the image of a
        /// pod that mounts every data volume). It needs bash, GNU findutils and coreutils.
        #[arg(long, value_name = "IMAGE", default_value = digest::IMAGE)]
        image: String,
        /// Output format of the final report.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

impl ProfileArgs {
    /// The profile these flags name, else the one named by `recorded` (a baseline's), else none.
    pub fn load(&self, recorded: Option<&str>) -> anyhow::Result<Option<Profile>> {
        Ok(match (&self.profile, &self.profile_file, recorded) {
            (_, Some(path), _) => Some(Profile::from_file(path)?),
            (Some(name), None, _) => Some(profile::builtin(name)?),
            (None, None, Some(name)) => Some(profile::builtin(name).map_err(|e| {
                anyhow::anyhow!(
                    "the baseline was recorded with profile {name:?}, which is not built in ({e}); pass --profile-file"
                )
            })?),
            (None, None, None) => None,
        })
    }
}

/// Styles for standard output under `--color` and the environment.
pub fn styles(choice: ColorChoice) -> Styles {
    use std::io::IsTerminal;
    Styles::new(color_enabled(
        choice,
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        std::io::stdout().is_terminal(),
    ))
}

/// Runs the command and returns the exit code.
pub async fn run(args: Args) -> anyhow::Result<u8> {
    if let Some(ns) = &args.kube.namespace {
        upgrade_shared::names::check_name("namespace", ns).map_err(anyhow::Error::msg)?;
    }
    let styles = styles(args.color);
    match args.command {
        Command::Record {
            profile,
            file,
            deep,
            image,
            format,
            yes,
            dry_run,
        } => {
            let profile = profile.load(None)?;
            commands::record::run(
                &args.kube,
                commands::record::Options {
                    profile,
                    file,
                    deep: deep.then_some(image),
                    format,
                    yes,
                    dry_run: dry_run.is_dry(),
                },
                &styles,
            )
            .await
        }
        Command::Verify {
            profile,
            to,
            baseline,
            image,
            format,
        } => {
            commands::verify::run(
                &args.kube,
                commands::verify::Options {
                    profile,
                    to,
                    baseline,
                    image,
                    format,
                    wait: None,
                },
                &styles,
            )
            .await
        }
        Command::Wait {
            profile,
            to,
            baseline,
            timeout,
            watch,
            image,
            format,
        } => {
            commands::verify::run(
                &args.kube,
                commands::verify::Options {
                    profile,
                    to: Some(to),
                    baseline,
                    image,
                    format,
                    wait: Some(commands::verify::Wait {
                        timeout: timeout.0,
                        watch,
                    }),
                },
                &styles,
            )
            .await
        }
    }
}
