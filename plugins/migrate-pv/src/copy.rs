//! `copy SOURCE DEST`: a short-lived migration pod mounts SOURCE read-only and DEST, copies
//! with GNU tar, then both sides are listed and compared (and hashed with `--verify=checksum`).
//! The pod is removed at the end, also on failure, and quiesced owners are scaled back.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, AttachParams, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use upgrade_shared::{exit, names, output, prompt};

use crate::cluster::{Cluster, describe, retry};
use crate::execute::wait;
use crate::{Args, DryRun, journal, tree};

/// How long the readers of a finished exec may take to drain what already arrived.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Default image: small, public, and carries GNU tar, findutils, coreutils and sort.
pub const DEFAULT_IMAGE: &str = "debian:bookworm-slim";

/// How thoroughly to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Verify {
    /// Compare type, size, mode, owner, mtime and link targets of every entry.
    Manifest,
    /// Also compare a sha256 of every regular file.
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
    /// Image of the migration pod; it needs GNU tar, find, sort, sha256sum, du and df.
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

/// Node constraints a volume carries (`spec.nodeAffinity.required`), as hostnames when they
/// are expressed that way; other terms are passed through to the pod.
fn volume_terms(v: &PersistentVolume) -> Vec<serde_json::Value> {
    v.spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
        .map(|r| {
            r.node_selector_terms
                .iter()
                .filter_map(|t| serde_json::to_value(t).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn hostnames(terms: &[serde_json::Value]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for t in terms {
        for e in t["matchExpressions"].as_array().into_iter().flatten() {
            if e["key"] == "kubernetes.io/hostname" && e["operator"] == "In" {
                out.extend(
                    e["values"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str().map(str::to_string)),
                );
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Where the migration pod must run: the node affinity terms of both volumes and, for a live
/// copy, the node where SOURCE is attached. Refuses pairs that no node can serve.
pub fn placement(
    source: &PersistentVolume,
    dest: Option<&PersistentVolume>,
    attached_on: Option<&str>,
) -> Result<Option<serde_json::Value>, String> {
    let mut terms = volume_terms(source);
    let mut allowed = hostnames(&terms);
    if let Some(d) = dest {
        let dterms = volume_terms(d);
        if let (Some(a), Some(b)) = (&allowed, hostnames(&dterms)) {
            let both: Vec<String> = a.iter().filter(|h| b.contains(h)).cloned().collect();
            if both.is_empty() {
                return Err(format!(
                    "no node can mount both volumes: pv/{} is on {} and pv/{} on {}",
                    source.metadata.name.clone().unwrap_or_default(),
                    a.join(","),
                    d.metadata.name.clone().unwrap_or_default(),
                    b.join(",")
                ));
            }
            allowed = Some(both);
        }
        // Terms of a volume must all be satisfied; node affinity ANDs expressions in a term.
        if terms.is_empty() {
            terms = dterms;
        } else if !dterms.is_empty() {
            terms = terms
                .iter()
                .flat_map(|a| {
                    dterms.iter().map(move |b| {
                        let mut exprs = a["matchExpressions"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        exprs.extend(
                            b["matchExpressions"]
                                .as_array()
                                .cloned()
                                .unwrap_or_default(),
                        );
                        json!({"matchExpressions": exprs})
                    })
                })
                .collect();
        }
    }
    if let Some(node) = attached_on {
        if allowed
            .as_ref()
            .is_some_and(|a| !a.iter().any(|h| h == node))
        {
            return Err(format!(
                "SOURCE is attached on node {node}, which the volumes' node affinity excludes"
            ));
        }
        let pin = json!({"key": "kubernetes.io/hostname", "operator": "In", "values": [node]});
        terms = if terms.is_empty() {
            vec![json!({"matchExpressions": [pin]})]
        } else {
            terms
                .into_iter()
                .map(|mut t| {
                    let mut exprs = t["matchExpressions"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    exprs.push(pin.clone());
                    t["matchExpressions"] = json!(exprs);
                    t
                })
                .collect()
        };
    }
    Ok((!terms.is_empty()).then(|| json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}})))
}

/// The migration pod: SOURCE read-only at /source, DEST at /dest, no service account token,
/// no privilege escalation, only the capabilities a faithful copy needs (owners, modes and
/// times of files it does not own), read-only root filesystem.
pub fn migration_pod(
    name: &str,
    namespace: &str,
    image: &str,
    source: Option<&str>,
    dest: Option<&str>,
    affinity: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut mounts = Vec::new();
    let mut volumes = Vec::new();
    if let Some(source) = source {
        mounts.push(json!({"name": "source", "mountPath": "/source", "readOnly": true}));
        volumes.push(json!({"name": "source", "persistentVolumeClaim": {"claimName": source, "readOnly": true}}));
    }
    if let Some(dest) = dest {
        mounts.push(json!({"name": "dest", "mountPath": "/dest"}));
        volumes.push(json!({"name": "dest", "persistentVolumeClaim": {"claimName": dest}}));
    }
    mounts.push(json!({"name": "tmp", "mountPath": "/tmp"}));
    volumes.push(json!({"name": "tmp", "emptyDir": {}}));
    let mut spec = json!({
        "restartPolicy": "Never",
        "automountServiceAccountToken": false,
        "enableServiceLinks": false,
        "terminationGracePeriodSeconds": 5,
        "securityContext": {"runAsUser": 0, "runAsGroup": 0, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "migrate",
            "image": image,
            "command": ["sleep", "86400"],
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"], "add": ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "MKNOD"]},
            },
            "volumeMounts": mounts,
        }],
        "volumes": volumes,
    });
    if let Some(a) = affinity {
        spec["affinity"] = a;
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "kubectl-upgrade", "app.kubernetes.io/component": "migrate-pv"},
        },
        "spec": spec,
    })
}

/// Name of the migration pod for a copy (stable, so a re-run finds a leftover one).
pub fn pod_name(dest: &str) -> String {
    let base = format!("migrate-pv-{dest}");
    if base.len() <= 63 {
        base
    } else {
        base[..63].trim_end_matches('-').to_string()
    }
}

struct Exec {
    stdout: tempfile::NamedTempFile,
    success: bool,
    message: String,
}

/// Runs argv in the pod, saving stdout to a temp file and feeding stderr lines to `on_line`.
async fn exec(
    pods: &Api<Pod>,
    pod: &str,
    argv: Vec<String>,
    on_line: &mut dyn FnMut(&str),
) -> anyhow::Result<Exec> {
    let params = AttachParams::default()
        .container("migrate")
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let mut process = pods
        .exec(pod, argv.clone(), &params)
        .await
        .map_err(|e| anyhow::anyhow!("cannot exec in pod/{pod}: {}", describe(&e)))?;
    let file = tempfile::NamedTempFile::new()?;
    let mut out = tokio::fs::File::from_std(file.reopen()?);
    let mut stdout = process
        .stdout()
        .ok_or_else(|| anyhow::anyhow!("no stdout from pod/{pod}"))?;
    let stderr = process
        .stderr()
        .ok_or_else(|| anyhow::anyhow!("no stderr from pod/{pod}"))?;
    let status = process.take_status();
    let copy_out = async {
        tokio::io::copy(&mut stdout, &mut out).await?;
        out.flush().await?;
        Ok::<_, std::io::Error>(())
    };
    let mut last_err = String::new();
    let read_err = async {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            on_line(&line);
            if !line.trim().is_empty() && tree::progress_line(&line).is_none() {
                last_err = line;
            }
        }
    };
    // When the connection breaks, kube's readers never see the end of their streams: watch
    // the connection itself and give the readers a moment to drain what already arrived.
    let join = process.join();
    tokio::pin!(join);
    let mut readers = Box::pin(async { tokio::join!(copy_out, read_err).0 });
    let mut joined = false;
    let copied = tokio::select! {
        copied = &mut readers => copied,
        _ = &mut join => {
            joined = true;
            match tokio::time::timeout(DRAIN, &mut readers).await {
                Ok(copied) => copied,
                Err(_) => Err(std::io::Error::other("the exec stream was cut before it ended")),
            }
        }
    };
    drop(readers);
    copied?;
    let status = match status {
        Some(s) if joined => tokio::time::timeout(DRAIN, s).await.ok().flatten(),
        Some(s) => s.await,
        None => None,
    };
    if !joined {
        let _ = tokio::time::timeout(DRAIN, join).await;
    }
    let (success, message) = match status {
        Some(s) if s.status.as_deref() == Some("Success") => (true, String::new()),
        Some(s) => (false, s.message.unwrap_or_default()),
        None => (false, "the exec stream ended without an exit status".into()),
    };
    Ok(Exec {
        stdout: file,
        success,
        message: if last_err.is_empty() {
            message
        } else {
            format!("{message}: {last_err}")
        },
    })
}

async fn exec_ok(
    pods: &Api<Pod>,
    pod: &str,
    argv: Vec<String>,
    what: &str,
    on_line: &mut dyn FnMut(&str),
) -> anyhow::Result<tempfile::NamedTempFile> {
    let r = exec(pods, pod, argv, on_line).await?;
    if !r.success {
        anyhow::bail!("{what} failed in pod/{pod}: {}", r.message);
    }
    Ok(r.stdout)
}

/// The owners (Deployment or StatefulSet) of pods that mount a claim, with their replicas.
async fn owners_of(cluster: &Cluster, pods: &[String]) -> anyhow::Result<BTreeMap<String, i32>> {
    let mut owners = BTreeMap::new();
    let pod_api = cluster.pods();
    for name in pods {
        let Some(pod) = retry("cannot read pod", || pod_api.get_opt(name)).await? else {
            continue;
        };
        let owner = pod
            .metadata
            .owner_references
            .unwrap_or_default()
            .into_iter()
            .find(|o| o.controller == Some(true));
        let Some(owner) = owner else {
            anyhow::bail!(
                "pod/{name} mounts SOURCE and has no controller to scale down; stop it yourself or use --allow-live"
            );
        };
        let key = match owner.kind.as_str() {
            "ReplicaSet" => {
                let api: Api<ReplicaSet> =
                    Api::namespaced(cluster.client.clone(), &cluster.namespace);
                let rs = retry("cannot read replicaset", || api.get(&owner.name)).await?;
                match rs
                    .metadata
                    .owner_references
                    .unwrap_or_default()
                    .into_iter()
                    .find(|o| o.kind == "Deployment")
                {
                    Some(d) => format!("deployment/{}", d.name),
                    None => format!("replicaset/{}", owner.name),
                }
            }
            "StatefulSet" => format!("statefulset/{}", owner.name),
            other => anyhow::bail!(
                "pod/{name} is owned by a {other}, which this command cannot scale; stop it yourself or use --allow-live"
            ),
        };
        if let std::collections::btree_map::Entry::Vacant(slot) = owners.entry(key) {
            let replicas = scale_of(cluster, slot.key()).await?;
            slot.insert(replicas);
        }
    }
    Ok(owners)
}

/// Reads, and with `replicas` sets, the scale subresource of one workload kind.
async fn scale<K>(api: Api<K>, name: &str, replicas: Option<i32>) -> anyhow::Result<i32>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let scale = match replicas {
        None => {
            retry(&format!("cannot read the scale of {name}"), || {
                api.get_scale(name)
            })
            .await?
        }
        Some(n) => {
            let body = json!({"spec": {"replicas": n}});
            let patch = Patch::Merge(&body);
            let params = PatchParams::default();
            retry(&format!("cannot scale {name} to {n}"), || {
                api.patch_scale(name, &params, &patch)
            })
            .await?
        }
    };
    Ok(scale.spec.and_then(|s| s.replicas).unwrap_or(0))
}

/// The scale of an owner named `deployment/x`, `statefulset/x` or `replicaset/x`; with
/// `replicas`, sets it first.
async fn owner_scale(cluster: &Cluster, key: &str, replicas: Option<i32>) -> anyhow::Result<i32> {
    let (kind, name) = key.split_once('/').unwrap_or(("", key));
    let (c, ns) = (cluster.client.clone(), cluster.namespace.as_str());
    match kind {
        "deployment" => scale(Api::<Deployment>::namespaced(c, ns), name, replicas).await,
        "statefulset" => scale(Api::<StatefulSet>::namespaced(c, ns), name, replicas).await,
        _ => scale(Api::<ReplicaSet>::namespaced(c, ns), name, replicas).await,
    }
}

async fn scale_of(cluster: &Cluster, key: &str) -> anyhow::Result<i32> {
    owner_scale(cluster, key, None).await
}

async fn set_scale(cluster: &Cluster, key: &str, replicas: i32) -> anyhow::Result<()> {
    owner_scale(cluster, key, Some(replicas)).await.map(|_| ())
}

fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", units[i])
}

/// The result of a copy, as printed with `-o json|yaml`.
#[derive(Debug, serde::Serialize)]
pub struct CopyReport {
    pub source: String,
    pub dest: String,
    pub namespace: String,
    pub verified: bool,
    pub verify: String,
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
        .ok_or_else(|| crate::plan::PlanError::NotBound(c.source.clone(), "not bound".into()))?;
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
    let users = cluster.pods_using(&c.source).await?;
    let dest_users = dest_cluster.pods_using(&c.dest).await?;
    if !dest_users.is_empty() {
        anyhow::bail!(
            "pvc/{} is in use by {}: a copy would write under a running application",
            c.dest,
            dest_users.join(", ")
        );
    }
    if !users.is_empty() && !c.quiesce && !c.allow_live {
        anyhow::bail!(
            "pvc/{} is mounted by {}: pass --quiesce to scale their owners to zero for the copy, or --allow-live for a copy that is not point-in-time",
            c.source,
            users
                .iter()
                .map(|p| format!("pod/{p}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let attached_on = if c.allow_live && !users.is_empty() {
        let pods = cluster.pods();
        let first = retry("cannot read pod", || pods.get(&users[0])).await?;
        first.spec.and_then(|s| s.node_name)
    } else {
        None
    };
    let same_namespace = dest_cluster.namespace == cluster.namespace;
    // One pod mounts both claims in one namespace; across namespaces each side gets its own
    // pod and the archive streams through this process.
    let (source_affinity, dest_affinity) = if same_namespace {
        let a = placement(&source_pv, dest_pv.as_ref(), attached_on.as_deref())
            .map_err(anyhow::Error::msg)?;
        (a.clone(), a)
    } else {
        (
            placement(&source_pv, None, attached_on.as_deref()).map_err(anyhow::Error::msg)?,
            match &dest_pv {
                Some(d) => placement(d, None, None).map_err(anyhow::Error::msg)?,
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
    let mut owners = if c.quiesce {
        owners_of(cluster, &users).await?
    } else {
        BTreeMap::new()
    };
    // An interrupted run may have scaled owners to zero already: this run restores them too,
    // to the replicas recorded before the first run touched them.
    if let Some(journal::Entry::Copy {
        quiesced, state, ..
    }) = journal::read(cluster)
        .await?
        .remove(&journal::copy_key(&c.dest))
        && state == "started"
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

    // The plan.
    let mut steps: Vec<String> = Vec::new();
    for (owner, replicas) in &owners {
        steps.push(format!(
            "scale {owner} from {replicas} to 0 (back to {replicas} afterwards)"
        ));
    }
    if dest.is_none() {
        steps.push(format!(
            "create pvc/{} ({size}, class {}, {})",
            c.dest,
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
            "start pod/{pod} ({}) mounting pvc/{} read-only at /source and pvc/{} at /dest",
            c.image, c.source, c.dest
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
            ", and a sha256 of every file"
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
            &json!({"command": "copy", "namespace": cluster.namespace, "steps": steps}),
            args.output.format,
        )?)?;
    }
    if args.dry_run != DryRun::None {
        return Ok(exit::OK);
    }
    let disruptive = !owners.is_empty() || dest.is_some();
    if disruptive && !prompt::confirm("Carry out these steps?", args.yes)? {
        anyhow::bail!("stopped: nothing was changed");
    }
    let key = journal::copy_key(&c.dest);
    journal::write(
        cluster,
        &key,
        &journal::Entry::Copy {
            source: c.source.clone(),
            dest: c.dest.clone(),
            quiesced: owners.clone(),
            state: "started".into(),
        },
    )
    .await?;
    for owner in owners.keys() {
        set_scale(cluster, owner, 0).await?;
    }
    let outcome = async {
        if !owners.is_empty() {
            wait(args.timeouts().bind, &format!("pods using pvc/{} to stop", c.source), || async { Ok(cluster.pods_using(&c.source).await?.is_empty()) }).await?;
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
    }
    .await;
    // Whatever happened: the pods go, the owners come back.
    remove_pod(args, &src_side).await;
    if !same_namespace {
        remove_pod(args, &dst_side).await;
    }
    let mut restore_error = None;
    for (owner, replicas) in &owners {
        if let Err(e) = set_scale(cluster, owner, *replicas).await {
            restore_error = Some(e.context(format!(
                "{owner} is still at 0 replicas: scale it back to {replicas}"
            )));
        }
    }
    let verification = outcome?;
    if let Some(e) = restore_error {
        return Err(e);
    }
    let report = CopyReport {
        source: c.source.clone(),
        dest: c.dest.clone(),
        namespace: cluster.namespace.clone(),
        verified: verification.is_ok(),
        verify: format!("{:?}", c.verify).to_lowercase(),
        files: verification.files,
        directories: verification.dirs,
        symlinks: verification.symlinks,
        bytes: verification.bytes,
        differences: verification.differences.clone(),
        more_differences: verification.more_differences,
    };
    journal::write(
        cluster,
        &key,
        &journal::Entry::Copy {
            source: c.source.clone(),
            dest: c.dest.clone(),
            quiesced: BTreeMap::new(),
            state: if report.verified {
                "verified".into()
            } else {
                "differs".into()
            },
        },
    )
    .await?;
    if table_out {
        let mut text = String::new();
        if report.verified {
            text.push_str(&format!(
                "{} {} files, {} directories, {} symlinks, {} — identical ({})\n",
                styles.good("verified:"),
                report.files,
                report.directories,
                report.symlinks,
                human(report.bytes),
                report.verify
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

/// One migration pod: where it runs and what it mounts.
pub struct Side {
    pub cluster: Cluster,
    pub pod: String,
    pub manifest: serde_json::Value,
}

/// Replaces a pod left by an interrupted run (its copy may be half done), creates the pod and
/// waits until it runs.
async fn start_pod(args: &Args, side: &Side) -> anyhow::Result<()> {
    let pods = side.cluster.pods();
    let pod = side.pod.as_str();
    if retry("cannot read pod", || pods.get_opt(pod))
        .await?
        .is_some()
    {
        let params = DeleteParams::default();
        retry("cannot delete pod", || pods.delete(pod, &params)).await?;
        wait(
            args.timeouts().bind,
            &format!("pod/{pod} to go"),
            || async {
                Ok(retry("cannot read pod", || pods.get_opt(pod))
                    .await?
                    .is_none())
            },
        )
        .await?;
    }
    let manifest: Pod = serde_json::from_value(side.manifest.clone())?;
    let params = PostParams::default();
    retry(&format!("cannot create pod/{pod}"), || {
        pods.create(&params, &manifest)
    })
    .await?;
    wait(
        args.timeouts().bind,
        &format!("pod/{pod} to run"),
        || async {
            let p = retry("cannot read pod", || pods.get(pod)).await?;
            match p.status.and_then(|s| s.phase).as_deref() {
                Some("Running") => Ok(true),
                Some(phase @ ("Failed" | "Succeeded")) => {
                    anyhow::bail!("pod/{pod} ended ({phase}) before the copy")
                }
                _ => Ok(false),
            }
        },
    )
    .await
}

/// Deletes a migration pod and waits until it no longer mounts anything.
async fn remove_pod(args: &Args, side: &Side) {
    let pods = side.cluster.pods();
    let pod = side.pod.as_str();
    let _ = pods.delete(pod, &DeleteParams::default()).await;
    // Until the pod is gone it still mounts its claims; wait so that what runs next (the
    // owners scaled back, another copy) finds them free.
    let gone = wait(
        args.timeouts().bind,
        &format!("pod/{pod} to be deleted"),
        || async {
            Ok(retry("cannot read pod", || pods.get_opt(pod))
                .await?
                .is_none())
        },
    )
    .await;
    if let Err(e) = gone {
        eprintln!(
            "warning: {e:#}; delete it with: kubectl delete pod {pod} -n {}",
            side.cluster.namespace
        );
    }
}

async fn run_in(
    side: &Side,
    argv: Vec<String>,
    what: &str,
) -> anyhow::Result<tempfile::NamedTempFile> {
    exec_ok(&side.cluster.pods(), &side.pod, argv, what, &mut |_| {}).await
}

/// Streams a tar archive from the source pod into the destination pod through this process,
/// in constant memory. Both ends must report success.
async fn pipe_copy(src: &Side, dst: &Side, on_line: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
    let out_params = AttachParams::default()
        .container("migrate")
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let in_params = AttachParams::default()
        .container("migrate")
        .stdin(true)
        .stdout(false)
        .stderr(true);
    let (src_pods, dst_pods) = (src.cluster.pods(), dst.cluster.pods());
    let mut pack = src_pods
        .exec(&src.pod, tree::pack_command("/source"), &out_params)
        .await
        .map_err(|e| anyhow::anyhow!("cannot exec in pod/{}: {}", src.pod, describe(&e)))?;
    let mut unpack = dst_pods
        .exec(&dst.pod, tree::unpack_command("/dest"), &in_params)
        .await
        .map_err(|e| anyhow::anyhow!("cannot exec in pod/{}: {}", dst.pod, describe(&e)))?;
    let mut archive = pack
        .stdout()
        .ok_or_else(|| anyhow::anyhow!("no stdout from pod/{}", src.pod))?;
    let mut sink = unpack
        .stdin()
        .ok_or_else(|| anyhow::anyhow!("no stdin to pod/{}", dst.pod))?;
    let pack_err = pack
        .stderr()
        .ok_or_else(|| anyhow::anyhow!("no stderr from pod/{}", src.pod))?;
    let unpack_err = unpack
        .stderr()
        .ok_or_else(|| anyhow::anyhow!("no stderr from pod/{}", dst.pod))?;
    let (pack_status, unpack_status) = (pack.take_status(), unpack.take_status());
    let mut pack_last = String::new();
    let mut unpack_last = String::new();
    let stream = async {
        tokio::io::copy(&mut archive, &mut sink).await?;
        // Dropping the writer does not end the remote command's input; shutting it down does.
        sink.shutdown().await?;
        Ok::<_, std::io::Error>(())
    };
    let pack_lines = async {
        let mut lines = tokio::io::BufReader::new(pack_err).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            on_line(&line);
            if !line.trim().is_empty() && tree::progress_line(&line).is_none() {
                pack_last = line;
            }
        }
    };
    let unpack_lines = async {
        let mut lines = tokio::io::BufReader::new(unpack_err).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if !line.trim().is_empty() {
                unpack_last = line;
            }
        }
    };
    let pack_join = pack.join();
    tokio::pin!(pack_join);
    let mut readers = Box::pin(async { tokio::join!(stream, pack_lines, unpack_lines).0 });
    let streamed = tokio::select! {
        streamed = &mut readers => streamed,
        _ = &mut pack_join => match tokio::time::timeout(DRAIN, &mut readers).await {
            Ok(streamed) => streamed,
            Err(_) => Err(std::io::Error::other("the exec stream was cut before it ended")),
        },
    };
    drop(readers);
    let verdict = |status: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
                   pod: &str,
                   last: &str| match status {
        Some(s) if s.status.as_deref() == Some("Success") => Ok(()),
        Some(s) => Err(anyhow::anyhow!(
            "the copy failed in pod/{pod}: {} {last}",
            s.message.unwrap_or_default()
        )),
        None => Err(anyhow::anyhow!(
            "the copy's stream to pod/{pod} ended without an exit status {last}"
        )),
    };
    let pack_status = match pack_status {
        Some(s) => tokio::time::timeout(DRAIN, s).await.ok().flatten(),
        None => None,
    };
    let unpack_status = match unpack_status {
        Some(s) => tokio::time::timeout(DRAIN * 6, s).await.ok().flatten(),
        None => None,
    };
    streamed.map_err(|e| {
        anyhow::anyhow!(
            "the copy stream from pod/{} to pod/{} broke: {e}",
            src.pod,
            dst.pod
        )
    })?;
    verdict(pack_status, &src.pod, &pack_last)?;
    verdict(unpack_status, &dst.pod, &unpack_last)?;
    let _ = tokio::time::timeout(DRAIN, unpack.join()).await;
    Ok(())
}

/// Measures, copies and verifies, with one pod (same namespace) or two (across namespaces).
async fn copy_in_pods(
    args: &Args,
    c: &CopyArgs,
    src: &Side,
    dst: &Side,
) -> anyhow::Result<tree::Verification> {
    let same = src.pod == dst.pod && src.cluster.namespace == dst.cluster.namespace;
    start_pod(args, src).await?;
    if !same {
        start_pod(args, dst).await?;
    }
    let (used, free) = if same {
        let space = run_in(
            src,
            tree::space_command("/source", "/dest"),
            "measuring space",
        )
        .await?;
        tree::parse_space(&std::fs::read_to_string(space.path())?)?
    } else {
        let used = run_in(src, tree::used_command("/source"), "measuring /source").await?;
        let avail = run_in(dst, tree::avail_command("/dest"), "measuring /dest").await?;
        let text = format!(
            "{} {}",
            std::fs::read_to_string(used.path())?.trim(),
            std::fs::read_to_string(avail.path())?.trim()
        );
        tree::parse_space(&text)?
    };
    // A volume backed by a shared filesystem (hostPath, local-path, NFS exports) shows the
    // whole filesystem's free space; the claim's capacity is the limit the user asked for.
    let capacity = dst
        .cluster
        .claim(&c.dest)
        .await?
        .and_then(|d| {
            let from_status = d
                .status
                .and_then(|s| s.capacity)
                .and_then(|cap| cap.get("storage").cloned());
            from_status.or_else(|| {
                d.spec
                    .and_then(|s| s.resources)
                    .and_then(|r| r.requests)
                    .and_then(|r| r.get("storage").cloned())
            })
        })
        .and_then(|q| crate::statefulset::bytes(&q))
        .map_or(u64::MAX, |b| u64::try_from(b).unwrap_or(u64::MAX));
    let avail = free.min(capacity);
    if used > avail {
        anyhow::bail!(
            "pvc/{} is too small: /source uses {} but /dest has {} free; nothing was copied",
            c.dest,
            human(used),
            human(avail)
        );
    }
    let bar = std::io::stderr().is_terminal() && args.output.format == output::Format::Table;
    let mut shown = 0u64;
    let mut on_progress = |line: &str| {
        if let Some(done) = tree::progress_line(line) {
            let pct = (done.min(used) * 100).checked_div(used).unwrap_or(100) as usize;
            if bar {
                eprint!(
                    "\r[{:<30}] {:>3}% {} / {}",
                    "#".repeat(pct * 30 / 100),
                    pct,
                    human(done),
                    human(used)
                );
            } else if done > shown + used / 10 {
                shown = done;
                eprintln!("copied {} of {}", human(done), human(used));
            }
        }
    };
    if same {
        exec_ok(
            &src.cluster.pods(),
            &src.pod,
            tree::copy_command("/source", "/dest"),
            "the copy",
            &mut on_progress,
        )
        .await?;
    } else {
        pipe_copy(src, dst, &mut on_progress).await?;
    }
    if bar {
        eprintln!();
    }
    let open = |f: &tempfile::NamedTempFile| -> anyhow::Result<std::io::BufReader<std::fs::File>> {
        Ok(std::io::BufReader::new(f.reopen()?))
    };
    let listed_src = run_in(src, tree::manifest_command("/source"), "listing /source").await?;
    let listed_dst = run_in(dst, tree::manifest_command("/dest"), "listing /dest").await?;
    let mut verification = tree::compare(
        tree::entries(open(&listed_src)?),
        tree::entries(open(&listed_dst)?),
    )?;
    if c.verify == Verify::Checksum {
        let summed_src = run_in(src, tree::checksum_command("/source"), "hashing /source").await?;
        let summed_dst = run_in(dst, tree::checksum_command("/dest"), "hashing /dest").await?;
        tree::compare_checksums(
            tree::checksums(open(&summed_src)?),
            tree::checksums(open(&summed_dst)?),
            &mut verification,
        )?;
    }
    Ok(verification)
}
