//! `kubectl upgrade-restart`: restart the pods an upgrade left behind — by pod condition, by
//! image version, by an operator's process-group condition, by label or name — one batch at a
//! time through the eviction API, all at once, or in place; and quiesce controllers (scale to
//! zero, wait for quiet logs) and resume them. Every command plans first, asks, and journals
//! what it changed in the ConfigMap `kubectl-upgrade-restart` so a re-run goes on.

pub mod commands;
pub mod diagnose;
pub mod facts;
pub mod idle;
pub mod plan;
pub mod render;
pub mod rollout;
pub mod select;
pub mod slots;

use std::time::Duration;

use clap::{Parser, Subcommand};
use upgrade_shared::flags::{DurationArg, KubeArgs, parse_duration};
use upgrade_shared::output::OutputArgs;

use crate::plan::Mode;

/// Name of the journal ConfigMap.
pub const JOURNAL: &str = "kubectl-upgrade-restart";

const AFTER_HELP: &str = "\
Several selectors add up: a pod is restarted when any of them selects it.

Examples:
  # FoundationDB: restart the processes left on the old version
  kubectl upgrade-restart pods -n fdb --profile foundationdb \\
      --process-condition MissingProcesses --process-condition IncorrectCommandLine

  # Restart coordinators by pod, in place (the profile's command, e.g. pkill fdbserver)
  kubectl upgrade-restart pods -n fdb --profile foundationdb sample-storage-1 sample-log-1 \\
      --mode in-place

  # A version-incompatible upgrade: every process together
  kubectl upgrade-restart pods -n fdb --profile foundationdb --all --mode all-at-once

  # After an upgrade: restart what it left behind, if anything (nothing selected: exit 0)
  kubectl upgrade-restart pods -n fdb --profile foundationdb \\
      --process-condition MissingProcesses --if-any

  # Pods not ready or still on an old image, two at a time
  kubectl upgrade-restart pods -n web --condition NotReady --not-version 2.4.1 --max-unavailable 2

  # Rok: stop the operator and the CSI controller, wait until CSI nodes are quiet; then resume
  kubectl upgrade-restart quiesce -n rok rok-system/sts/rok-operator sts/rok-csi-controller \\
      --idle-logs app=rok-csi-node --idle-for 30s
  kubectl upgrade-restart resume -n rok

Exit status: 0 done (with --if-any also when nothing is selected), 1 a pod did not become
Ready, the application stayed unhealthy, a disruption budget or the journal refused (nothing
more changed), 2 bad input or could not run.";

/// Restart pods by condition, version or process-group condition; quiesce and resume controllers.
#[derive(Debug, Parser)]
#[command(name = "kubectl-upgrade-restart", bin_name = "kubectl upgrade-restart", version, after_help = AFTER_HELP)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    /// Print the plan and stop (`client` and `server` both change nothing).
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "client", default_value = "none", global = true, value_name = "MODE")]
    pub dry_run: DryRun,
    /// Do not ask before restarting or scaling.
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
    /// How long each wait may take: a batch to be Ready and healthy, pods to go, logs to quiet.
    #[arg(long, default_value = "5m", value_parser = parse_duration, global = true)]
    pub timeout: DurationArg,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub use upgrade_shared::flags::DryRun;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Restart the selected pods (a union of every selector given).
    Pods(PodsArgs),
    /// Scale workloads to zero, wait until their pods are gone and, with --idle-logs, quiet.
    Quiesce(QuiesceArgs),
    /// Put back the replicas the last quiesce recorded.
    Resume,
}

/// `pods` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct PodsArgs {
    /// Pods to restart, by name.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// The application's profile: process groups, health and the in-place command.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// A profile from a file instead of a built-in one.
    #[arg(long, value_name = "FILE", conflicts_with = "profile")]
    pub profile_file: Option<std::path::PathBuf>,
    /// Pods with this condition: NotReady, CrashLoopBackOff, ImagePullBackOff, Pending, … (repeatable).
    #[arg(long = "condition", value_name = "C")]
    pub conditions: Vec<String>,
    /// Pods whose process group has this condition in the profile's custom resource (repeatable).
    #[arg(long = "process-condition", value_name = "C")]
    pub process_conditions: Vec<String>,
    /// Pods with an image whose tag is not this version.
    #[arg(long, value_name = "V")]
    pub not_version: Option<String>,
    /// Pods matching this label selector.
    #[arg(short = 'l', long = "selector", value_name = "SEL")]
    pub selector: Option<String>,
    /// Every pod in the namespace.
    #[arg(long)]
    pub all: bool,
    /// How to restart.
    #[arg(long, value_enum, default_value_t = Mode::Rolling)]
    pub mode: Mode,
    /// Pods restarted together in rolling and in-place mode.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_unavailable: u32,
    /// When the selectors match no pod, say "nothing to restart" and exit 0 instead of failing
    /// (a runbook's restart after an upgrade that left nothing behind). Named pods that do not
    /// exist are still an error.
    #[arg(long)]
    pub if_any: bool,
}

/// `quiesce` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct QuiesceArgs {
    /// Workloads to scale to zero: deploy/NAME, sts/NAME, rs/NAME, NAMESPACE/sts/NAME.
    #[arg(value_name = "WORKLOAD", required = true)]
    pub workloads: Vec<String>,
    /// Then wait until the pods matching this selector (in -n) log nothing for --idle-for.
    #[arg(long, value_name = "SEL")]
    pub idle_logs: Option<String>,
    /// How long the pods of --idle-logs must stay quiet.
    #[arg(long, value_parser = parse_duration, default_value = "30s", requires = "idle_logs")]
    pub idle_for: DurationArg,
}

impl Args {
    /// The wait limit (`0` means none: a day).
    pub fn timeout(&self) -> Duration {
        self.timeout.0.unwrap_or(Duration::from_secs(86_400))
    }

    /// True with `--dry-run`.
    pub fn dry_run(&self) -> bool {
        self.dry_run != DryRun::None
    }
}

/// Runs the command and returns its exit code.
pub async fn run(args: Args) -> anyhow::Result<u8> {
    match &args.command {
        Command::Pods(p) => commands::pods::run(&args, p).await,
        Command::Quiesce(q) => commands::quiesce::run(&args, q).await,
        Command::Resume => commands::resume::run(&args).await,
    }
}
