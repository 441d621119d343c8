//! `kubectl upgrade-migrate-pv`: keep every byte of a volume across an upgrade — keep volumes
//! (retain), hand a volume to a new claim without copying (adopt), copy with proof (copy), and
//! put things back (restore-policy, rollback). Every command plans first and records its steps
//! in a journal on the cluster.

pub mod adopt;
pub mod cleanup;
pub mod copy;
pub mod execute;
pub mod journal;
pub mod plan;
pub mod render;
pub mod statefulset;
pub mod tree;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::Api;
use upgrade_shared::flags::{KubeArgs, parse_duration};
use upgrade_shared::output::{self, Format, OutputArgs};
use upgrade_shared::{exit, names, prompt};

use crate::plan::{AdoptState, Plan};
use upgrade_shared::cluster::{self, Cluster};

const AFTER_HELP: &str = "\
Examples:
  # Keep the volumes behind two claims whatever happens to the claims
  kubectl upgrade-migrate-pv retain mysql-data python-data -n fate-9999

  # Hand the Deployment's claim to the StatefulSet that replaces it (no copy)
  kubectl upgrade-migrate-pv adopt mysql-data data-mysql-0 -n fate-9999 --for-statefulset mysql

  # Several claims at once, in parallel, checked against their StatefulSets' templates
  kubectl upgrade-migrate-pv adopt nodemanager-0-data=data-dir-nodemanager-0 \\
    nodemanager-1-data=data-dir-nodemanager-1 -n fate-9999 --for-statefulset nodemanager -f fate-1.9.0.yaml

  # Copy a claim into another, verified file by file and by checksum
  kubectl upgrade-migrate-pv copy minio-data-minio-0 minio-new -n kubeflow --create --verify=checksum

  # After the upgrade is verified: original reclaim policies back
  kubectl upgrade-migrate-pv restore-policy --all -n fate-9999

Exit status: 0 done (or nothing to do); 1 refused by a safety rule (nothing was changed) or
the copy differs from its source; 2 bad input or the command could not run.";

const ADOPT_ABOUT: &str = "\
Hand the volume behind each old claim to a new claim without copying: Retain first, then the
old claim is deleted, the volume pre-bound to the new name and the new claim created on it.

One pair is OLD NEW; several are OLD=NEW OLD2=NEW2 …. Every precondition of every pair is
checked before the first change (one bad pair and nothing changes), one prompt covers them
all, and the pairs are carried out in parallel, each journalled on its own: a re-run after an
interruption resumes every pair, and `rollback NEW` undoes one. The bindings are waited for
once, within --timeout (the volume binder resyncs every 15 s on a real cluster). The result
lists every pair's outcome; the exit status is not 0 when any pair failed.

--for-statefulset checks the pairs; it does not derive them. Which old claim holds which
replica's data is known only to whoever set the old workloads up, so every pair is named.";

/// Keep every byte of a volume across an upgrade: retain, copy with proof, adopt.
#[derive(Debug, Parser)]
#[command(name = "kubectl-upgrade-migrate-pv", bin_name = "kubectl upgrade-migrate-pv", version, after_help = AFTER_HELP)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    /// Print the plan and stop (`client` and `server` both change nothing).
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "client", default_value = "none", global = true, value_name = "MODE")]
    pub dry_run: DryRun,
    /// Do not ask before destructive steps.
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
    /// How long to wait for a claim to bind, a pod to start or a claim to go away.
    #[arg(long, default_value = "5m", value_parser = parse_duration, global = true)]
    pub timeout: upgrade_shared::flags::DurationArg,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub use upgrade_shared::flags::DryRun;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set reclaim policy Retain on the volumes behind claims (the original is recorded).
    Retain {
        /// Claims whose volumes to keep.
        claims: Vec<String>,
        /// Select the claims by label instead (not empty: use --all for every claim).
        #[arg(short = 'l', long)]
        selector: Option<String>,
        /// Every claim in the namespace.
        #[arg(long, conflicts_with = "selector")]
        all: bool,
    },
    /// Hand volumes to new claims without copying: one pair as OLD NEW, or several as
    /// OLD=NEW OLD2=NEW2 …, checked together and carried out in parallel.
    #[command(long_about = ADOPT_ABOUT)]
    Adopt {
        /// The claims: OLD NEW (one pair), or OLD=NEW for each pair.
        #[arg(required = true, value_name = "OLD NEW | OLD=NEW")]
        pairs: Vec<String>,
        /// Check every NEW against this StatefulSet's volumeClaimTemplates (repeat it when the
        /// pairs go to several StatefulSets: each NEW is checked against the one whose claim
        /// names it matches). It checks the pairs; it does not make them up.
        #[arg(long, value_name = "NAME")]
        for_statefulset: Vec<String>,
        /// Target manifests holding those StatefulSets, when they do not exist yet.
        #[arg(short = 'f', long = "filename", value_name = "FILE")]
        manifests: Vec<PathBuf>,
        /// Scale the owners of pods that mount the old claims to zero first (recorded;
        /// `rollback` scales them back).
        #[arg(long)]
        quiesce: bool,
    },
    /// Put back the reclaim policies recorded by retain and adopt.
    RestorePolicy {
        /// Claims whose volumes to restore.
        claims: Vec<String>,
        /// Every volume in the namespace with a recorded policy.
        #[arg(long)]
        all: bool,
    },
    /// Undo an adoption: the volume goes back under its old claim.
    Rollback {
        /// The claim the volume was adopted into.
        new_claim: String,
    },
    /// Show what was done in the namespace and what remains.
    Status,
    /// Delete a claim and its volume once a verified copy of it is recorded and still there.
    Cleanup {
        /// The claim that was copied.
        claim: String,
        /// Image of the short-lived pod that lists CLAIM again before anything is deleted.
        #[arg(long, default_value = copy::DEFAULT_IMAGE)]
        image: String,
    },
    /// Copy the data of one claim into another through a migration pod, and verify it.
    Copy(copy::CopyArgs),
}

impl Args {
    pub(crate) fn timeouts(&self) -> execute::Timeouts {
        execute::Timeouts {
            bind: self.timeout.0.unwrap_or(Duration::from_secs(24 * 3600)),
        }
    }
}

fn check_names(kind: &str, names_: &[&str]) -> anyhow::Result<()> {
    for n in names_ {
        names::check_name(kind, n).map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

/// Prints a plan, asks when it is destructive, and runs it unless this is a dry run.
pub(crate) async fn carry_out(
    args: &Args,
    cluster: &Cluster,
    plan: &Plan,
    before: impl AsyncFnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<u8> {
    let styles = args.output.styles();
    let dry_run = args.dry_run != DryRun::None;
    match args.output.format {
        Format::Table => output::print(&render::plan(plan, &styles))?,
        format if dry_run || plan.steps.is_empty() => output::print(&output::to_document(
            &render::Outcome::of(plan, "planned", dry_run),
            format,
        )?)?,
        // Machine-readable output says once, at the end, what was done.
        _ => {}
    }
    if dry_run || plan.steps.is_empty() {
        return Ok(exit::OK);
    }
    if plan.destructive() && !prompt::confirm("Carry out these steps?", args.yes)? {
        return Err(exit::refused("stopped: nothing was changed"));
    }
    before().await?;
    let quiet = args.output.format != Format::Table;
    execute::run(cluster, plan, args.timeouts(), &|line| {
        if !quiet {
            eprintln!("{line}");
        }
    })
    .await?;
    if quiet {
        output::print(&output::to_document(
            &render::Outcome::of(plan, "done", false),
            args.output.format,
        )?)?;
    } else {
        eprintln!("{}", styles.good("done"));
    }
    Ok(exit::OK)
}

pub(crate) async fn adopt_state(
    cluster: &Cluster,
    old: &str,
    new: &str,
    record: Option<plan::AdoptRecord>,
) -> anyhow::Result<AdoptState> {
    let old_claim = cluster.claim(old).await?;
    let new_claim = cluster.claim(new).await?;
    let volume = match (&old_claim, &record, &new_claim) {
        (Some(c), _, _) => cluster.volume_of(c).await?,
        (None, Some(r), _) => cluster.volume(&r.volume).await?,
        (None, None, Some(c)) => cluster.volume_of(c).await?,
        _ => None,
    };
    let users = if old_claim.is_some() {
        cluster.pods_using(old).await?
    } else {
        Vec::new()
    };
    Ok(AdoptState {
        namespace: cluster.namespace.clone(),
        old: old_claim,
        new: new_claim,
        volume,
        users,
        record,
    })
}

pub(crate) async fn find_statefulset(
    cluster: &Cluster,
    name: &str,
    manifests: &[PathBuf],
) -> anyhow::Result<StatefulSet> {
    for file in manifests {
        for object in upgrade_shared::yaml::read_objects(file)? {
            if object["kind"] == "StatefulSet"
                && object.pointer("/metadata/name").and_then(|n| n.as_str()) == Some(name)
            {
                return serde_json::from_value(object).map_err(|e| {
                    anyhow::anyhow!("{}: sts/{name} is malformed: {e}", file.display())
                });
            }
        }
    }
    let api: Api<StatefulSet> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    cluster::retry(&format!("cannot read sts/{name}"), || api.get_opt(name))
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "statefulsets {name:?} not found in namespace {} and not in the -f manifests",
                cluster.namespace
            )
        })
}

/// The exit code of a failed command: 1 when a safety rule refused (nothing was changed), 2
/// for bad input or a command that could not run.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let refused = err.chain().any(|c| {
        c.downcast_ref::<plan::PlanError>()
            .is_some_and(plan::PlanError::is_refusal)
    });
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
        Command::Retain {
            claims,
            selector,
            all,
        } => {
            check_names(
                "claim",
                &claims.iter().map(String::as_str).collect::<Vec<_>>(),
            )?;
            if [!claims.is_empty(), selector.is_some(), *all]
                .iter()
                .filter(|given| **given)
                .count()
                != 1
            {
                anyhow::bail!(
                    "name the claims, select them with -l, or pass --all: one of the three"
                );
            }
            if let Some(s) = selector {
                if s.trim().is_empty() {
                    anyhow::bail!(
                        "-l '' is an empty selector, which would select every claim: pass --all to mean that"
                    );
                }
                names::parse_selector(s).map_err(anyhow::Error::msg)?;
            }
            let selector = match (selector, all) {
                (Some(s), _) => Some(s.clone()),
                (None, true) => Some(String::new()),
                (None, false) => None,
            };
            let cluster = connect(&args).await?;
            let mut found = Vec::new();
            let list = match &selector {
                Some(s) => cluster.claims_by_selector(s).await?,
                None => {
                    let mut v = Vec::new();
                    for c in claims {
                        v.push(cluster.claim(c).await?.ok_or_else(|| {
                            plan::PlanError::ClaimNotFound(c.clone(), cluster.namespace.clone())
                        })?);
                    }
                    v
                }
            };
            if list.is_empty() {
                anyhow::bail!(
                    "no claims match {} in namespace {}",
                    selector.as_deref().unwrap_or_default(),
                    cluster.namespace
                );
            }
            for claim in list {
                let volume = cluster.volume_of(&claim).await?;
                found.push((claim, volume));
            }
            let plan = plan::retain(&cluster.namespace, &found)?;
            carry_out(&args, &cluster, &plan, async || Ok(())).await
        }
        Command::Adopt {
            pairs,
            for_statefulset,
            manifests,
            quiesce,
        } => adopt::run(&args, pairs, for_statefulset, manifests, *quiesce).await,
        Command::Rollback { new_claim } => {
            check_names("claim", &[new_claim])?;
            let cluster = connect(&args).await?;
            let key = journal::adopt_key(new_claim);
            let mut others = journal::JOURNAL.read(&cluster).await?;
            let Some(journal::Entry::Adopt {
                record, quiesced, ..
            }) = others.remove(&key)
            else {
                return Err(plan::PlanError::NoRecord(
                    new_claim.clone(),
                    cluster.namespace.clone(),
                )
                .into());
            };
            let mut state =
                adopt_state(&cluster, &record.old_claim, new_claim, Some(record.clone())).await?;
            state.users = cluster.pods_using(new_claim).await?;
            let mut plan = plan::rollback_adopt(&state, new_claim)?;
            let mut current = std::collections::BTreeMap::new();
            for owner in quiesced.keys() {
                let now = upgrade_shared::scale::replicas(&cluster, owner).await.ok();
                current.insert(owner.clone(), now);
            }
            let (scales, held) =
                plan::rollback_scales(&cluster.namespace, &quiesced, &current, &others);
            plan.steps.extend(scales);
            plan.warnings.extend(held);
            let result = carry_out(&args, &cluster, &plan, async || Ok(())).await?;
            if args.dry_run == DryRun::None {
                journal::JOURNAL
                    .write(
                        &cluster,
                        &key,
                        &journal::Entry::Adopt {
                            record,
                            state: "rolled-back".into(),
                            quiesced: Default::default(),
                        },
                    )
                    .await?;
            }
            Ok(result)
        }
        Command::RestorePolicy { claims, all } => {
            check_names(
                "claim",
                &claims.iter().map(String::as_str).collect::<Vec<_>>(),
            )?;
            if claims.is_empty() != *all {
                anyhow::bail!("name the claims, or pass --all, not both or neither");
            }
            let cluster = connect(&args).await?;
            let mut volumes = cluster.volumes_annotated(plan::ORIGINAL_POLICY).await?;
            if !*all {
                volumes.retain(|v| {
                    let name = v
                        .spec
                        .as_ref()
                        .and_then(|s| s.claim_ref.as_ref())
                        .and_then(|r| r.name.clone())
                        .unwrap_or_default();
                    claims.contains(&name)
                });
            }
            let plan = plan::restore_policy(&cluster.namespace, &volumes);
            let code = carry_out(&args, &cluster, &plan, async || Ok(())).await?;
            Ok(if plan.warnings.is_empty() {
                code
            } else {
                exit::FINDINGS
            })
        }
        Command::Status => {
            let cluster = connect(&args).await?;
            let entries = journal::JOURNAL.read(&cluster).await?;
            let volumes = cluster.volumes_annotated(plan::ORIGINAL_POLICY).await?;
            let stale = cleanup::stale_copies(&cluster, &entries).await?;
            let status = render::Status::build(&cluster.namespace, &entries, &volumes, &stale);
            match args.output.format {
                Format::Table => output::print(&render::status(&status, &args.output.styles()))?,
                format => output::print(&output::to_document(&status, format)?)?,
            }
            Ok(exit::OK)
        }
        Command::Cleanup { claim, image } => {
            check_names("claim", &[claim])?;
            let cluster = connect(&args).await?;
            let entries = journal::JOURNAL.read(&cluster).await?;
            let copy = cleanup::verified_copy(&cluster.namespace, claim, &entries);
            let state = cleanup::state(&cluster, claim, copy, image).await?;
            let plan = cleanup::plan(&state)?;
            carry_out(&args, &cluster, &plan, async || Ok(())).await
        }
        Command::Copy(copy_args) => {
            copy_args.validate()?;
            let cluster = connect(&args).await?;
            copy::run(&args, copy_args, &cluster).await
        }
    }
}

pub(crate) async fn connect(args: &Args) -> anyhow::Result<Cluster> {
    let (client, namespace) = args.kube.client().await?;
    Ok(Cluster { client, namespace })
}
