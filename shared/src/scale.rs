//! Stopping workloads and bringing them back: the owners (Deployment, StatefulSet, ReplicaSet)
//! of pods, scaling them to zero and back to their recorded replicas through the `scale`
//! subresource (which leaves the rest of the spec alone, so it never fights an apply), and
//! waiting until their pods are gone.
//!
//! Owners are named `deployment/NAME`, `statefulset/NAME` or `replicaset/NAME` in the
//! namespace of the [`Cluster`] handle; that name is what a journal records.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::cluster::{Cluster, retry, wait};

/// Owners by name (`kind/name`) with their replicas before they were scaled down.
pub type Replicas = BTreeMap<String, i32>;

/// Why the owner of a pod cannot be scaled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerError {
    /// The pod has no controller: nothing would stop it that could bring it back.
    #[error("pod/{pod} has no controller to scale down; stop it yourself")]
    NoController { pod: String },
    /// The pod's controller has no replicas to set (a DaemonSet, a Job, an operator's kind).
    #[error("pod/{pod} is owned by a {kind}, which cannot be scaled to zero; stop it yourself")]
    Unscalable { pod: String, kind: String },
    /// A name that is not `deployment/…`, `statefulset/…` or `replicaset/…`.
    #[error("{0:?} is not deployment/NAME, statefulset/NAME or replicaset/NAME")]
    BadName(String),
}

/// The controller of a pod, when it has one: `(kind, name)`.
pub fn controller_of(pod: &Pod) -> Option<(String, String)> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| (o.kind.clone(), o.name.clone()))
}

/// The scalable owners of these pods, each with its replicas now. A ReplicaSet that belongs to
/// a Deployment is named by its Deployment (scaling the ReplicaSet would be undone).
pub async fn owners_of(cluster: &Cluster, pods: &[Pod]) -> anyhow::Result<Replicas> {
    let mut owners = Replicas::new();
    let sets: Api<ReplicaSet> = cluster.api();
    for pod in pods {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let Some((kind, name)) = controller_of(pod) else {
            return Err(OwnerError::NoController { pod: pod_name }.into());
        };
        let key = match kind.as_str() {
            "ReplicaSet" => {
                let rs = retry(&format!("cannot read replicaset/{name}"), || {
                    sets.get(&name)
                })
                .await?;
                match rs
                    .metadata
                    .owner_references
                    .unwrap_or_default()
                    .into_iter()
                    .find(|o| o.kind == "Deployment" && o.controller == Some(true))
                {
                    Some(d) => format!("deployment/{}", d.name),
                    None => format!("replicaset/{name}"),
                }
            }
            "StatefulSet" => format!("statefulset/{name}"),
            _ => {
                return Err(OwnerError::Unscalable {
                    pod: pod_name,
                    kind,
                }
                .into());
            }
        };
        if let std::collections::btree_map::Entry::Vacant(slot) = owners.entry(key) {
            let replicas = replicas(cluster, slot.key()).await?;
            slot.insert(replicas);
        }
    }
    Ok(owners)
}

async fn scale_api<K>(api: Api<K>, key: &str, name: &str, set: Option<i32>) -> anyhow::Result<i32>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let scale = match set {
        None => {
            retry(&format!("cannot read the scale of {key}"), || {
                api.get_scale(name)
            })
            .await?
        }
        Some(n) => {
            let body = json!({"spec": {"replicas": n}});
            let patch = Patch::Merge(&body);
            let params = PatchParams::default();
            retry(&format!("cannot scale {key} to {n}"), || {
                api.patch_scale(name, &params, &patch)
            })
            .await?
        }
    };
    Ok(scale.spec.and_then(|s| s.replicas).unwrap_or(0))
}

async fn owner_scale(cluster: &Cluster, key: &str, set: Option<i32>) -> anyhow::Result<i32> {
    let (kind, name) = key
        .split_once('/')
        .ok_or_else(|| OwnerError::BadName(key.into()))?;
    match kind {
        "deployment" => scale_api(cluster.api::<Deployment>(), key, name, set).await,
        "statefulset" => scale_api(cluster.api::<StatefulSet>(), key, name, set).await,
        "replicaset" => scale_api(cluster.api::<ReplicaSet>(), key, name, set).await,
        _ => Err(OwnerError::BadName(key.into()).into()),
    }
}

/// The replicas an owner asks for now.
pub async fn replicas(cluster: &Cluster, key: &str) -> anyhow::Result<i32> {
    owner_scale(cluster, key, None).await
}

/// Sets an owner's replicas.
pub async fn set_replicas(cluster: &Cluster, key: &str, replicas: i32) -> anyhow::Result<()> {
    owner_scale(cluster, key, Some(replicas)).await.map(|_| ())
}

/// Scales every owner to zero.
pub async fn scale_down(cluster: &Cluster, owners: &Replicas) -> anyhow::Result<()> {
    for key in owners.keys() {
        set_replicas(cluster, key, 0).await?;
    }
    Ok(())
}

/// Scales every owner back to its recorded replicas. Tries them all; the error names each one
/// left at zero and the command that brings it back.
pub async fn restore(cluster: &Cluster, owners: &Replicas) -> anyhow::Result<()> {
    let mut left = Vec::new();
    for (key, n) in owners {
        if let Err(e) = set_replicas(cluster, key, *n).await {
            left.push(format!(
                "{key} is still at 0 replicas ({e:#}): kubectl scale {key} -n {} --replicas={n}",
                cluster.namespace
            ));
        }
    }
    if left.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", left.join("; "))
    }
}

/// True for a pod on its way out: being deleted, or owned by a controller that asks for zero
/// replicas (its controller deletes it soon: right after `kubectl scale --replicas=0` the pod
/// may not carry a deletionTimestamp yet).
pub async fn stopping(cluster: &Cluster, pod: &Pod) -> anyhow::Result<bool> {
    if pod.metadata.deletion_timestamp.is_some() {
        return Ok(true);
    }
    match owners_of(cluster, std::slice::from_ref(pod)).await {
        Ok(owners) => Ok(!owners.is_empty() && owners.values().all(|n| *n == 0)),
        Err(e) if e.downcast_ref::<OwnerError>().is_some() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Waits until none of these pods exists any more (a terminating pod still holds its volumes).
pub async fn wait_pods_gone(
    cluster: &Cluster,
    pods: &[String],
    timeout: Duration,
) -> anyhow::Result<()> {
    if pods.is_empty() {
        return Ok(());
    }
    let what = pods
        .iter()
        .map(|p| format!("pod/{p}"))
        .collect::<Vec<_>>()
        .join(", ");
    wait(timeout, &format!("{what} to be gone"), || async {
        for p in pods {
            if cluster.pod(p).await?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controller_is_the_owner_reference_marked_controller() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "1"},
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "2", "controller": true}
            ]}
        }))
        .expect("pod");
        assert_eq!(
            controller_of(&pod),
            Some(("StatefulSet".into(), "db".into()))
        );
        let bare: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}})).expect("pod");
        assert_eq!(controller_of(&bare), None);
    }
}
