//! `kubectl upgrade-check`: before anything is touched, tells whether an application can go
//! from one version to another without losing data, and which steps make it lossless.

pub mod context;
pub mod finding;
pub mod live;
pub mod persistence;
pub mod plan;
pub mod render;
pub mod rules;
pub mod runbook;
pub mod snapshot;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use upgrade_shared::flags::KubeArgs;
use upgrade_shared::output::{self, Format, OutputArgs};
use upgrade_shared::profile::{self, Outcome, Profile};
use upgrade_shared::version::Version;
use upgrade_shared::{exit, names};

use crate::snapshot::Snapshot;

const AFTER_HELP: &str = "\
Examples:
  # Check a KubeFATE cluster.yaml offline, no cluster needed
  kubectl upgrade-check --profile fate --from-file cluster.yaml --to v1.9.0

  # Check the FATE installation running in namespace fate-9999, as JSON
  kubectl upgrade-check --profile fate -n fate-9999 --to v1.9.0 -o json

  # Check against the manifests the upgrade would apply
  helm template fate ./fate-v1.9.0 > target.yaml
  kubectl upgrade-check --profile fate -n fate-9999 --to v1.9.0 -f target.yaml

Exit status: 0 the upgrade is safe, 1 it is not (needs-steps, data-loss or blocked),
2 the check could not be made.";

/// Tells whether an upgrade keeps every byte of data, and which steps make it lossless.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-upgrade-check",
    bin_name = "kubectl upgrade-check",
    version,
    about = "Tell whether an upgrade keeps all data, and which steps make it lossless",
    after_help = AFTER_HELP
)]
pub struct Args {
    /// Built-in profile of the application (fate, foundationdb, kubeflow, rok).
    #[arg(long, value_name = "NAME", required_unless_present_any = ["profile_file", "list_profiles"], conflicts_with = "profile_file")]
    pub profile: Option<String>,
    /// A profile of your own, in the built-in profiles' YAML format.
    #[arg(long, value_name = "PATH")]
    pub profile_file: Option<PathBuf>,
    /// Version to upgrade to.
    #[arg(
        long,
        value_name = "VERSION",
        required_unless_present = "list_profiles"
    )]
    pub to: Option<String>,
    /// Version running now (default: read from the cluster or the files).
    #[arg(long, value_name = "VERSION")]
    pub from: Option<String>,
    /// Check objects from files instead of a cluster: a KubeFATE cluster.yaml or
    /// `kubectl get … -o yaml` output. Repeatable.
    #[arg(long = "from-file", value_name = "FILE")]
    pub from_files: Vec<PathBuf>,
    /// Target manifests the upgrade applies (`helm template`, `kustomize build`). Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub targets: Vec<PathBuf>,
    /// List the built-in profiles and exit.
    #[arg(long)]
    pub list_profiles: bool,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Parses a version given on the command line.
fn version_arg(flag: &str, text: &str) -> anyhow::Result<Version> {
    Version::parse(text).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

/// Loads the profile the flags name.
fn load_profile(args: &Args) -> anyhow::Result<Profile> {
    Ok(match (&args.profile, &args.profile_file) {
        (_, Some(path)) => Profile::from_file(path)?,
        (Some(name), None) => profile::builtin(name)?,
        (None, None) => anyhow::bail!("name a profile with --profile or --profile-file"),
    })
}

/// Builds the snapshot from files (`--from-file`).
pub fn offline_snapshot(files: &[PathBuf], namespace: Option<&str>) -> anyhow::Result<Snapshot> {
    let mut snapshot = Snapshot::default();
    for file in files {
        let origin = file.display().to_string();
        for value in upgrade_shared::yaml::read_objects(file)? {
            snapshot.add(value, &origin)?;
        }
    }
    snapshot.namespace = namespace
        .map(str::to_string)
        .or_else(|| snapshot.namespace_from_objects())
        .unwrap_or_else(|| "default".into());
    Ok(snapshot)
}

/// Runs the command and returns the exit code.
pub async fn run(args: Args) -> anyhow::Result<u8> {
    if args.list_profiles {
        let catalogue = profile::catalogue();
        let text = match args.output.format {
            Format::Table => {
                let rows: Vec<Vec<String>> = catalogue
                    .into_iter()
                    .map(|(name, title)| vec![name.to_string(), title])
                    .collect();
                output::table(&["name", "title"], &rows, |_, c| c.to_string())
            }
            format => {
                let list: Vec<serde_json::Value> = catalogue
                    .into_iter()
                    .map(|(name, title)| serde_json::json!({"name": name, "title": title}))
                    .collect();
                output::to_document(&list, format)?
            }
        };
        output::print(&text)?;
        return Ok(exit::OK);
    }
    if let Some(ns) = &args.kube.namespace {
        names::check_name("namespace", ns).map_err(anyhow::Error::msg)?;
    }
    let profile = load_profile(&args)?;
    let options = plan::Options {
        from: args
            .from
            .as_deref()
            .map(|v| version_arg("from", v))
            .transpose()?,
        to: args
            .to
            .as_deref()
            .map(|v| version_arg("to", v))
            .transpose()?,
        targets: args
            .targets
            .iter()
            .map(|f| {
                upgrade_shared::yaml::read_objects(f).map(|objs| {
                    objs.into_iter()
                        .map(|o| (f.display().to_string(), o))
                        .collect::<Vec<_>>()
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect(),
    };
    let snapshot = if args.from_files.is_empty() {
        let (client, namespace) = args.kube.client().await?;
        let mut snapshot = live::load(&client, &namespace, &profile)
            .await
            .context("cannot read the application from the cluster (check --kubeconfig/--context, or use --from-file)")?;
        // The database's status is read only for a move whose clients must be checked.
        if plan::clients_to_check(&profile, &snapshot, &options) {
            snapshot.database_status = live::database_status(&client, &snapshot, &profile).await;
        }
        snapshot
    } else {
        offline_snapshot(&args.from_files, args.kube.namespace.as_deref())?
    };
    let report = plan::check(&profile, &snapshot, &options)?;
    let text = match args.output.format {
        Format::Table => render::table(&report, &args.output.styles()),
        format => output::to_document(&report, format)?,
    };
    output::print(&text)?;
    Ok(if report.verdict == Outcome::Safe {
        exit::OK
    } else {
        exit::FINDINGS
    })
}
