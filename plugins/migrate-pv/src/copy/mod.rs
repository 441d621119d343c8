//! `copy SOURCE DEST`: a short-lived migration pod mounts SOURCE read-only and DEST, copies
//! with GNU tar, and both sides are listed and compared; with `--verify=checksum` the archive
//! is digested as it streams and the destination archived again to match it (see
//! [`verify`]).
//! The pod is removed at the end, also on failure, and quiesced owners are scaled back. Across
//! namespaces each side has its own pod and the archive streams through this process.

mod interrupt;
mod pod;
pub mod proof;
mod require;
mod stream;
pub mod verify;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use serde_json::json;
use upgrade_shared::{exit, names, output, prompt};

use crate::{Args, DryRun, journal, tree};
use upgrade_shared::cluster::{Cluster, retry, wait};
use upgrade_shared::scale;

use pod::{Side, remove_pod};
pub use pod::{migration_pod, placement, pod_name};
use verify::{ContentCheck, Proven, copy_in_pods};

/// Default image: small, public, and carries GNU tar, findutils, coreutils and sort.
pub const DEFAULT_IMAGE: &str = "debian:bookworm-slim";

/// How thoroughly to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Verify {
    /// Compare type, size, mode, owner, mtime and link targets of every entry.
    Manifest,
    /// Also compare every regular file's content: the digest of the archive as it streamed
    /// against the destination archived again, and a sha256 of every file where they differ.
    Checksum,
}

/// Flags of `copy`.
#[derive(Debug, Clone, clap::Args)]
pub struct CopyArgs {
    /// The claim to copy from (mounted read-only).
    pub source: String,
    /// The claim to copy into.
    pub dest: String,
    /// Namespace of DEST (default: the namespace of SOURCE).
    #[arg(long, value_name = "NAMESPACE")]
    pub to_namespace: Option<String>,
    /// Create DEST when it does not exist.
    #[arg(long)]
    pub create: bool,
    /// Size of a created DEST (default: SOURCE's capacity).
    #[arg(long, requires = "create")]
    pub size: Option<String>,
    /// Storage class of a created DEST (default: SOURCE's).
    #[arg(long, requires = "create")]
    pub storage_class: Option<String>,
    /// Image of the migration pod; it needs bash, GNU tar, find, sort, tee, sha256sum, b2sum, du
    /// and df.
    #[arg(long, default_value = DEFAULT_IMAGE)]
    pub image: String,
    /// Scale the owners of pods that mount SOURCE to zero for the copy, and back afterwards.
    #[arg(long, conflicts_with = "allow_live")]
    pub quiesce: bool,
    /// Copy while SOURCE is in use (not a point-in-time copy: files may change under it).
    #[arg(long)]
    pub allow_live: bool,
    /// Verification after the copy.
    #[arg(long, value_enum, default_value = "manifest")]
    pub verify: Verify,
}

impl CopyArgs {
    pub fn validate(&self) -> anyhow::Result<()> {
        for n in [&self.source, &self.dest] {
            names::check_name("claim", n).map_err(anyhow::Error::msg)?;
        }
        if let Some(ns) = &self.to_namespace {
            names::check_name("namespace", ns).map_err(anyhow::Error::msg)?;
        }
        if let Some(class) = &self.storage_class {
            names::check_name("storage class", class).map_err(anyhow::Error::msg)?;
        }
        if self.source == self.dest && self.to_namespace.is_none() {
            anyhow::bail!(
                "SOURCE and DEST are the same claim ({}): name another claim, or another namespace with --to-namespace",
                self.source
            );
        }
        if let Some(size) = &self.size
            && crate::statefulset::bytes(&k8s_openapi::apimachinery::pkg::api::resource::Quantity(
                size.clone(),
            ))
            .is_none()
        {
            anyhow::bail!("--size {size:?} is not a quantity (e.g. 10Gi)");
        }
        if self.image.is_empty() || self.image.chars().any(char::is_whitespace) {
            anyhow::bail!("--image {:?} is not an image reference", self.image);
        }
        Ok(())
    }
}

pub(super) use upgrade_shared::quantity::human;

/// The result of a copy, as printed with `-o json|yaml`.
#[derive(Debug, serde::Serialize)]
pub struct CopyReport {
    /// Every step of the plan with its outcome (`done`).
    pub steps: Vec<serde_json::Value>,
    pub source: String,
    pub dest: String,
    pub namespace: String,
    pub verified: bool,
    pub verify: String,
    /// How contents were compared with `--verify=checksum`: `archive` or `per-file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksums: Option<ContentCheck>,
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    pub bytes: u64,
    pub differences: Vec<tree::Difference>,
    pub more_differences: u64,
}

/// Runs `copy`.
pub async fn run(args: &Args, c: &CopyArgs, cluster: &Cluster) -> anyhow::Result<u8> {
    let dest_cluster = Cluster {
        client: cluster.client.clone(),
        namespace: c
            .to_namespace
            .clone()
            .unwrap_or_else(|| cluster.namespace.clone()),
    };
    let source = cluster.claim(&c.source).await?.ok_or_else(|| {
        crate::plan::PlanError::ClaimNotFound(c.source.clone(), cluster.namespace.clone())
    })?;
    let source_pv = cluster
        .volume_of(&source)
        .await?
        .ok_or_else(|| crate::plan::missing_volume(&source))?;
    if c.source == c.dest && dest_cluster.namespace == cluster.namespace {
        anyhow::bail!(
            "SOURCE and DEST are the same claim ({} in namespace {}): name another claim, or another namespace with --to-namespace",
            c.source,
            cluster.namespace
        );
    }
    if c.to_namespace.is_some() {
        require::namespace(&dest_cluster).await?;
    }
    let dest = dest_cluster.claim(&c.dest).await?;
    if dest.is_none() && !c.create {
        anyhow::bail!(
            "persistentvolumeclaims {:?} not found in namespace {}; pass --create to create it",
            c.dest,
            dest_cluster.namespace
        );
    }
    let dest_pv = match &dest {
        Some(d) => dest_cluster.volume_of(d).await?,
        None => None,
    };
    // A run that was killed leaves its journal entry `started` and may leave its migration
    // pods: those are this copy's own (by journal, name and label), replaced when it starts
    // them again — not users of the claims.
    let previous = journal::JOURNAL
        .get(cluster, &journal::copy_key(&c.dest))
        .await?;
    let resuming =
        matches!(&previous, Some(journal::Entry::Copy { state, .. }) if state == "started");
    let own = [pod_name(&c.dest), pod_name(&format!("{}-source", c.dest))];
    let not_own = |p: &k8s_openapi::api::core::v1::Pod| {
        !(resuming
            && p.metadata.name.as_ref().is_some_and(|n| own.contains(n))
            && pod::is_migration_pod(p))
    };
    let source_pods: Vec<_> = cluster
        .pods_mounting(&c.source)
        .await?
        .into_iter()
        .filter(not_own)
        .collect();
    let users: Vec<String> = source_pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let dest_users: Vec<String> = dest_cluster
        .pods_mounting(&c.dest)
        .await?
        .into_iter()
        .filter(not_own)
        .filter_map(|p| p.metadata.name)
        .collect();
    if !dest_users.is_empty() {
        return Err(exit::refused(format!(
            "pvc/{} is in use by {}: a copy would write under a running application",
            c.dest,
            dest_users.join(", ")
        )));
    }
    if !users.is_empty() && !c.quiesce && !c.allow_live {
        return Err(exit::refused(format!(
            "pvc/{} is mounted by {}: pass --quiesce to scale their owners to zero for the copy, or --allow-live for a copy that is not point-in-time",
            c.source,
            users
                .iter()
                .map(|p| format!("pod/{p}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let attached_on = if !users.is_empty() {
        let pods = cluster.pods();
        let first = retry("cannot read pod", || pods.get(&users[0])).await?;
        first.spec.and_then(|s| s.node_name)
    } else {
        None
    };
    let live_on = attached_on.as_deref().filter(|_| c.allow_live);
    let same_namespace = dest_cluster.namespace == cluster.namespace;
    // One pod mounts both claims in one namespace; across namespaces each side gets its own
    // pod and the archive streams through this process.
    let (source_affinity, dest_affinity) = if same_namespace {
        let a = placement(&source_pv, dest_pv.as_ref(), live_on).map_err(exit::refused)?;
        (a.clone(), a)
    } else {
        (
            placement(&source_pv, None, live_on).map_err(exit::refused)?,
            match &dest_pv {
                Some(d) => placement(d, None, None).map_err(exit::refused)?,
                None => None,
            },
        )
    };
    let source_spec = source.spec.clone().unwrap_or_default();
    let size = c.size.clone().unwrap_or_else(|| {
        source_pv
            .spec
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|cap| cap.get("storage"))
            .map(|q| q.0.clone())
            .unwrap_or_else(|| "1Gi".into())
    });
    let class = c
        .storage_class
        .clone()
        .or_else(|| source_spec.storage_class_name.clone());
    if dest.is_none()
        && let Some(class) = class.as_deref().filter(|c| !c.is_empty())
    {
        require::storage_class(cluster, class).await?;
    }
    let mut owners = if c.quiesce {
        scale::owners_of(cluster, &source_pods).await.map_err(|e| {
            e.context(format!(
                "cannot quiesce pvc/{} (copy it live with --allow-live instead)",
                c.source
            ))
        })?
    } else {
        BTreeMap::new()
    };
    // An interrupted run may have scaled owners to zero already: this run restores them too,
    // to the replicas recorded before the first run touched them.
    if let Some(journal::Entry::Copy { quiesced, .. }) = previous
        && resuming
    {
        owners.extend(quiesced);
    }
    let pod = pod_name(&c.dest);
    let (src_side, dst_side) = if same_namespace {
        let manifest = migration_pod(
            &pod,
            &cluster.namespace,
            &c.image,
            Some(&c.source),
            Some(&c.dest),
            source_affinity,
        );
        (
            Side {
                cluster: cluster.clone(),
                pod: pod.clone(),
                manifest: manifest.clone(),
            },
            Side {
                cluster: cluster.clone(),
                pod: pod.clone(),
                manifest,
            },
        )
    } else {
        let src_pod = pod_name(&format!("{}-source", c.dest));
        (
            Side {
                cluster: cluster.clone(),
                manifest: migration_pod(
                    &src_pod,
                    &cluster.namespace,
                    &c.image,
                    Some(&c.source),
                    None,
                    source_affinity,
                ),
                pod: src_pod,
            },
            Side {
                cluster: dest_cluster.clone(),
                manifest: migration_pod(
                    &pod,
                    &dest_cluster.namespace,
                    &c.image,
                    None,
                    Some(&c.dest),
                    dest_affinity,
                ),
                pod: pod.clone(),
            },
        )
    };

    // With --quiesce the owners stop before the copy pod measures the data; a destination too
    // small would then be found with the application already down. So the data is measured
    // first, through a short-lived read-only pod on the node the claim is attached to (a
    // ReadWriteOnce claim may be mounted by several pods of one node).
    let room = match dest.as_ref() {
        Some(d) => stream::claim_bytes(d),
        None => crate::statefulset::bytes(
            &k8s_openapi::apimachinery::pkg::api::resource::Quantity(size.clone()),
        )
        .map(|b| u64::try_from(b).unwrap_or(u64::MAX)),
    };
    // A ReadWriteOncePod claim admits no second pod while the application runs: it is measured
    // in the copy pod, after the quiesce, as the plan says.
    let single_pod = source_spec
        .access_modes
        .as_ref()
        .is_some_and(|m| m.iter().any(|m| m == "ReadWriteOncePod"));
    let measure = (!owners.is_empty() && !resuming && !single_pod)
        .then(|| {
            let name = pod_name(&format!("{}-measure", c.dest));
            placement(&source_pv, None, attached_on.as_deref()).map(|affinity| Side {
                cluster: cluster.clone(),
                manifest: pod::measure_pod(
                    &name,
                    &cluster.namespace,
                    &c.image,
                    &c.source,
                    affinity,
                ),
                pod: name,
            })
        })
        .transpose()
        .map_err(exit::refused)?
        .filter(|_| room.is_some());

    // A pod of someone else's with one of the names this copy gives its pods is never replaced.
    for side in [Some(&src_side), Some(&dst_side), measure.as_ref()]
        .into_iter()
        .flatten()
    {
        upgrade_shared::volume_pod::ensure_free(side).await?;
    }

    // The plan.
    let mut steps: Vec<String> = Vec::new();
    if let (Some(m), Some(room)) = (&measure, room) {
        steps.push(format!(
            "measure /source through pod/{} (read-only) while the application runs; refuse if pvc/{} ({}) cannot hold it",
            m.pod,
            c.dest,
            human(room)
        ));
    }
    for (owner, replicas) in &owners {
        steps.push(format!(
            "scale {owner} from {replicas} to 0 (back to {replicas} afterwards)"
        ));
    }
    if dest.is_none() {
        steps.push(format!(
            "create pvc/{} in namespace {} ({size}, class {}, {})",
            c.dest,
            dest_cluster.namespace,
            class.clone().unwrap_or_else(|| "default".into()),
            source_spec
                .access_modes
                .clone()
                .unwrap_or_default()
                .join(",")
        ));
    }
    if same_namespace {
        steps.push(format!(
            "start pod/{pod} in namespace {} ({}) mounting pvc/{} read-only at /source and pvc/{} at /dest",
            cluster.namespace, c.image, c.source, c.dest
        ));
    } else {
        steps.push(format!(
            "start pod/{} in {} mounting pvc/{} read-only, and pod/{pod} in {} mounting pvc/{}; the archive streams between them through this command",
            src_side.pod, cluster.namespace, c.source, dest_cluster.namespace, c.dest
        ));
    }
    steps.push("refuse if /dest has less room than /source uses".into());
    steps.push(
        "copy /source → /dest with GNU tar (owners, modes, times, links, sparse files)".into(),
    );
    steps.push(format!(
        "verify: compare every entry's type, size, mode, owner, mtime and link target{}",
        if c.verify == Verify::Checksum {
            ", and the content of every file (the archive's digest as it streamed against /dest archived again; a sha256 of every file where they differ)"
        } else {
            ""
        }
    ));
    steps.push(if same_namespace {
        format!("delete pod/{pod}")
    } else {
        format!("delete pod/{} and pod/{pod}", src_side.pod)
    });
    let styles = args.output.styles();
    let table_out = args.output.format == output::Format::Table;
    if table_out {
        let mut text = format!(
            "{} copy {} {} in namespace {}\n",
            styles.heading("Plan:"),
            c.source,
            c.dest,
            cluster.namespace
        );
        for (i, s) in steps.iter().enumerate() {
            text.push_str(&format!("{:>3}. {s}\n", i + 1));
        }
        if c.allow_live && !users.is_empty() {
            text.push_str(&format!(
                "{} pvc/{} is in use: the copy is not point-in-time\n",
                styles.warn("warning:"),
                c.source
            ));
        }
        output::print(&text)?;
    } else if args.dry_run != DryRun::None {
        output::print(&output::to_document(
            &json!({"command": "copy", "namespace": cluster.namespace, "dry_run": true, "steps": steps.iter().map(|s| json!({"description": s, "outcome": "planned"})).collect::<Vec<_>>()}),
            args.output.format,
        )?)?;
    }
    if args.dry_run != DryRun::None {
        return Ok(exit::OK);
    }
    let disruptive = !owners.is_empty() || dest.is_some();
    if disruptive && !prompt::confirm("Carry out these steps?", args.yes)? {
        return Err(exit::refused("stopped: nothing was changed"));
    }
    // From here on a Ctrl-C or SIGTERM stops the copy through the same exit as a failure:
    // pods removed, owners scaled back.
    let mut interrupted = interrupt::Signals::install()?;
    if let (Some(m), Some(room)) = (&measure, room) {
        let used = tokio::select! {
            used = stream::measure_source(args.timeouts().bind, m) => used?,
            signal = interrupted.recv() => {
                remove_pod(args.timeouts().bind, m).await;
                anyhow::bail!("interrupted by {signal} while measuring /source; nothing was changed");
            }
        };
        if used > room {
            return Err(exit::refused(format!(
                "pvc/{} is too small: /source uses {} but pvc/{} holds {}; nothing was changed",
                c.dest,
                human(used),
                c.dest,
                human(room)
            )));
        }
    }
    let key = journal::copy_key(&c.dest);
    journal::JOURNAL
        .write(
            cluster,
            &key,
            &journal::Entry::Copy {
                source: c.source.clone(),
                dest: c.dest.clone(),
                dest_namespace: c.to_namespace.clone(),
                quiesced: owners.clone(),
                state: "started".into(),
                proof: None,
            },
        )
        .await?;
    scale::scale_down(cluster, &owners).await?;
    let work = async {
        if resuming {
            // The killed run's pods may still mount the claims; they go first.
            for side in [&src_side, &dst_side] {
                side.cluster.delete_pod(&side.pod).await?;
                scale::wait_pods_gone(
                    &side.cluster,
                    std::slice::from_ref(&side.pod),
                    args.timeouts().bind,
                )
                .await?;
            }
        }
        if !owners.is_empty() {
            wait(
                args.timeouts().bind,
                &format!("pods using pvc/{} to stop", c.source),
                || async { Ok(cluster.pods_using(&c.source).await?.is_empty()) },
            )
            .await?;
        }
        if dest.is_none() {
            let mut pvc = json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": c.dest, "namespace": dest_cluster.namespace},
                "spec": {"accessModes": source_spec.access_modes.clone().unwrap_or_else(|| vec!["ReadWriteOnce".into()]), "resources": {"requests": {"storage": size}}, "volumeMode": source_spec.volume_mode.clone().unwrap_or_else(|| "Filesystem".into())}
            });
            if let Some(class) = &class {
                pvc["spec"]["storageClassName"] = json!(class);
            }
            let pvc: PersistentVolumeClaim = serde_json::from_value(pvc)?;
            dest_cluster.create_claim(&pvc).await?;
        }
        copy_in_pods(args, c, &src_side, &dst_side).await
    };
    let outcome = tokio::select! {
        done = work => done,
        signal = interrupted.recv() => Err(anyhow::anyhow!(
            "interrupted by {signal}: the copy stopped; its pods are removed and the owners scaled back — run the same command again to copy"
        )),
    };
    // The copy holds what the source held until now: its owners are still scaled down.
    let verified_at = upgrade_shared::pv_journal::now();
    // Whatever happened: the pods go, the owners come back.
    remove_pod(args.timeouts().bind, &src_side).await;
    if !same_namespace {
        remove_pod(args.timeouts().bind, &dst_side).await;
    }
    let restore_error = scale::restore(cluster, &owners).await.err();
    let Proven {
        verification,
        digest,
        content,
    } = outcome?;
    if let Some(e) = restore_error {
        return Err(e);
    }
    let proof = if verification.is_ok() {
        Some(
            proof::gather(
                cluster,
                &dest_cluster,
                &c.source,
                &c.dest,
                digest,
                verified_at,
            )
            .await?,
        )
    } else {
        None
    };
    let report = CopyReport {
        steps: steps
            .iter()
            .map(|s| json!({"description": s, "outcome": "done"}))
            .collect(),
        source: c.source.clone(),
        dest: c.dest.clone(),
        namespace: cluster.namespace.clone(),
        verified: verification.is_ok(),
        verify: format!("{:?}", c.verify).to_lowercase(),
        checksums: content,
        files: verification.files,
        directories: verification.dirs,
        symlinks: verification.symlinks,
        bytes: verification.bytes,
        differences: verification.differences.clone(),
        more_differences: verification.more_differences,
    };
    journal::JOURNAL
        .write(
            cluster,
            &key,
            &journal::Entry::Copy {
                source: c.source.clone(),
                dest: c.dest.clone(),
                dest_namespace: c.to_namespace.clone(),
                quiesced: BTreeMap::new(),
                state: if report.verified {
                    "verified".into()
                } else {
                    "differs".into()
                },
                proof,
            },
        )
        .await?;
    if table_out {
        let mut text = String::new();
        if report.verified {
            text.push_str(&format!(
                "{} {}, {}, {}, {} — identical ({}{})\n",
                styles.good("verified:"),
                output::count(report.files, "file", "files"),
                output::count(report.directories, "directory", "directories"),
                output::count(report.symlinks, "symlink", "symlinks"),
                human(report.bytes),
                report.verify,
                content
                    .map(|c| format!(": {}", c.describe()))
                    .unwrap_or_default()
            ));
        } else {
            text.push_str(&format!(
                "{} the copy differs from the source:\n",
                styles.bad("NOT verified:")
            ));
            for d in &report.differences {
                text.push_str(&format!("  {}: {}\n", d.path, d.what));
            }
            if report.more_differences > 0 {
                text.push_str(&format!("  … and {} more\n", report.more_differences));
            }
        }
        output::print(&text)?;
    } else {
        output::print(&output::to_document(&report, args.output.format)?)?;
    }
    Ok(if report.verified {
        exit::OK
    } else {
        exit::FINDINGS
    })
}
