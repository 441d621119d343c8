//! Short-lived pods that mount volumes to run commands on them (migrate-pv's copies, verify's
//! tree digests): where such a pod may run (the volumes' node affinity, the node a volume in use
//! is attached on), its manifest, its start (replacing one an interrupted run left, saying why
//! it does not run) and its removal (waiting until it no longer mounts anything).

use k8s_openapi::api::core::v1::{PersistentVolume, Pod};
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

use crate::cluster::{Cluster, retry, wait};

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

/// Where a pod mounting these volumes must run: the node affinity terms of both and, for a
/// volume in use, the node where SOURCE is attached. Refuses pairs that no node can serve.
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

/// A claim a [`manifest`] pod mounts.
#[derive(Debug, Clone, Copy)]
pub struct Mount<'a> {
    /// The volume's name in the pod.
    pub name: &'a str,
    pub claim: &'a str,
    pub path: &'a str,
    pub read_only: bool,
}

/// A pod that only runs commands exec'd into its container `container` on the claims it
/// mounts: no service account token, no privilege escalation, a read-only root filesystem with
/// an emptyDir at /tmp, running as root with only the capabilities `add` names (all others
/// dropped). Labelled managed-by kubectl-upgrade with `component`.
#[allow(clippy::too_many_arguments)]
pub fn manifest(
    name: &str,
    namespace: &str,
    image: &str,
    component: &str,
    container: &str,
    mounts: &[Mount<'_>],
    add: &[&str],
    affinity: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut volume_mounts = Vec::new();
    let mut volumes = Vec::new();
    for m in mounts {
        let mut mount = json!({"name": m.name, "mountPath": m.path});
        let mut claim = json!({"claimName": m.claim});
        if m.read_only {
            mount["readOnly"] = json!(true);
            claim["readOnly"] = json!(true);
        }
        volume_mounts.push(mount);
        volumes.push(json!({"name": m.name, "persistentVolumeClaim": claim}));
    }
    volume_mounts.push(json!({"name": "tmp", "mountPath": "/tmp"}));
    volumes.push(json!({"name": "tmp", "emptyDir": {}}));
    let mut spec = json!({
        "restartPolicy": "Never",
        "automountServiceAccountToken": false,
        "enableServiceLinks": false,
        "terminationGracePeriodSeconds": 5,
        "securityContext": {"runAsUser": 0, "runAsGroup": 0, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": container,
            "image": image,
            "command": ["sleep", "86400"],
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"], "add": add},
            },
            "volumeMounts": volume_mounts,
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
            "labels": {"app.kubernetes.io/managed-by": "kubectl-upgrade", "app.kubernetes.io/component": component},
        },
        "spec": spec,
    })
}

/// A pod name made of `prefix` and `claim`, within the 63 characters a label value (and the
/// pod's hostname) allows; stable, so a re-run finds a pod an interrupted one left. A longer
/// name is cut and ends with a digest of the whole, so that two long claims that differ only
/// at the end (`…-0`, `…-1`) never share a pod name.
pub fn name(prefix: &str, claim: &str) -> String {
    use sha2::Digest as _;
    let base = format!("{prefix}-{claim}");
    if base.len() <= 63 {
        return base;
    }
    let digest = sha2::Sha256::digest(base.as_bytes());
    let tag: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{tag}", base[..54].trim_end_matches(['-', '.']))
}

/// One pod that mounts volumes: where it runs and what it mounts.
pub struct VolumePod {
    pub cluster: Cluster,
    pub pod: String,
    pub manifest: serde_json::Value,
}

/// Why an existing pod with `manifest`'s name is not one this suite may replace (a user's pod
/// that happens to have the name, or another command's), or `None` when it is ours.
fn not_ours(existing: &Pod, manifest: &serde_json::Value) -> Option<String> {
    let labels = existing.metadata.labels.clone().unwrap_or_default();
    let pod = existing.metadata.name.as_deref().unwrap_or_default();
    ["app.kubernetes.io/managed-by", "app.kubernetes.io/component"]
        .into_iter()
        .find_map(|key| {
            let (theirs, ours) = (labels.get(key), manifest["metadata"]["labels"][key].as_str());
            (theirs.map(String::as_str) != ours).then(|| {
                format!(
                    "pod/{pod} exists and is not the pod this command starts (its label {key} is {}): remove or rename it, then run the same command again; nothing was changed",
                    theirs.map_or_else(|| "not set".to_string(), |v| format!("{v:?}"))
                )
            })
        })
}

/// Refuses (exit 1) when a pod with `side`'s name exists that is not ours: checked before a
/// command's first change, and again by [`start`] right before it replaces one.
pub async fn ensure_free(side: &VolumePod) -> anyhow::Result<()> {
    let pods = side.cluster.pods();
    match retry("cannot read pod", || pods.get_opt(&side.pod)).await? {
        Some(existing) => match not_ours(&existing, &side.manifest) {
            Some(why) => Err(crate::exit::refused(why)),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

/// Replaces a pod left by an interrupted run (its copy may be half done), creates the pod and
/// waits until it runs.
pub async fn start(timeout: std::time::Duration, side: &VolumePod) -> anyhow::Result<()> {
    let pods = side.cluster.pods();
    let pod = side.pod.as_str();
    if let Some(existing) = retry("cannot read pod", || pods.get_opt(pod)).await? {
        if let Some(why) = not_ours(&existing, &side.manifest) {
            return Err(crate::exit::refused(why));
        }
        let params = DeleteParams {
            preconditions: existing
                .metadata
                .uid
                .clone()
                .map(|uid| kube::api::Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
            ..DeleteParams::default()
        };
        retry("cannot delete pod", || pods.delete(pod, &params)).await?;
        wait(timeout, &format!("pod/{pod} to go"), || async {
            Ok(retry("cannot read pod", || pods.get_opt(pod))
                .await?
                .is_none())
        })
        .await?;
    }
    let manifest: Pod = serde_json::from_value(side.manifest.clone())?;
    let params = PostParams::default();
    retry(&format!("cannot create pod/{pod}"), || {
        pods.create(&params, &manifest)
    })
    .await?;
    let ran = wait(timeout, &format!("pod/{pod} to run"), || async {
        let p = retry("cannot read pod", || pods.get(pod)).await?;
        match p.status.and_then(|s| s.phase).as_deref() {
            Some("Running") => Ok(true),
            Some(phase @ ("Failed" | "Succeeded")) => {
                anyhow::bail!("pod/{pod} ended ({phase}) before its work")
            }
            _ => Ok(false),
        }
    })
    .await;
    match ran {
        Ok(()) => Ok(()),
        Err(e) => {
            // Say why: most often a claim that does not bind (no provisioner, no volume).
            let why = why_not_running(&side.cluster, pod, &manifest).await;
            Err(if why.is_empty() { e } else { e.context(why) })
        }
    }
}

/// The phase and latest events of each claim the pod mounts that is not Bound, and the pod's
/// own latest events; empty when nothing explains it.
async fn why_not_running(cluster: &Cluster, pod: &str, manifest: &Pod) -> String {
    let mut out = Vec::new();
    let claims = manifest
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .map(|vs| {
            vs.iter()
                .filter_map(|v| {
                    v.persistent_volume_claim
                        .as_ref()
                        .map(|c| c.claim_name.clone())
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for claim in claims {
        let Ok(Some(c)) = cluster.claim(&claim).await else {
            continue;
        };
        let phase = c
            .status
            .and_then(|s| s.phase)
            .unwrap_or_else(|| "Pending".into());
        if phase != "Bound" {
            let events = latest_events(cluster, "PersistentVolumeClaim", &claim).await;
            out.push(format!(
                "pvc/{claim} is {phase}{}",
                if events.is_empty() {
                    " (no events: is there a provisioner for its storage class, or a volume it can bind?)".to_string()
                } else {
                    format!("; its latest events: {events}")
                }
            ));
        }
    }
    let events = latest_events(cluster, "Pod", pod).await;
    if !events.is_empty() {
        out.push(format!("pod/{pod}'s latest events: {events}"));
    }
    out.join("; ")
}

/// The last three events about an object, `reason: message`, oldest first.
async fn latest_events(cluster: &Cluster, kind: &str, name: &str) -> String {
    let api: kube::Api<k8s_openapi::api::core::v1::Event> = cluster.api();
    let params = kube::api::ListParams::default().fields(&format!(
        "involvedObject.kind={kind},involvedObject.name={name}"
    ));
    let Ok(list) = retry("cannot list events", || api.list(&params)).await else {
        return String::new();
    };
    let mut items = list.items;
    items.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
    let start = items.len().saturating_sub(3);
    items[start..]
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Deletes the pod and waits until it no longer mounts anything.
pub async fn remove(timeout: std::time::Duration, side: &VolumePod) {
    let pods = side.cluster.pods();
    let pod = side.pod.as_str();
    let _ = pods.delete(pod, &DeleteParams::default()).await;
    // Until the pod is gone it still mounts its claims; wait so that what runs next (the
    // owners scaled back, another copy) finds them free.
    let gone = wait(timeout, &format!("pod/{pod} to be deleted"), || async {
        Ok(retry("cannot read pod", || pods.get_opt(pod))
            .await?
            .is_none())
    })
    .await;
    if let Err(e) = gone {
        eprintln!(
            "warning: {e:#}; delete it with: kubectl delete pod {pod} -n {}",
            side.cluster.namespace
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_names_stay_distinct_and_within_63_characters() {
        let a = super::name("migrate-pv", &format!("{}-0", "x".repeat(60)));
        let b = super::name("migrate-pv", &format!("{}-1", "x".repeat(60)));
        assert_ne!(a, b);
        assert!(a.len() <= 63 && b.len() <= 63, "{a} {b}");
        assert_eq!(
            a,
            super::name("migrate-pv", &format!("{}-0", "x".repeat(60)))
        );
        assert_eq!(super::name("verify", "data"), "verify-data");
        let m = super::name("migrate-pv", &format!("{}-measure", "y".repeat(50)));
        assert_ne!(m, super::name("migrate-pv", &"y".repeat(50)));
    }
}
