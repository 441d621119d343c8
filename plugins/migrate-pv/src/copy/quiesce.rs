//! Quiescing: the owners of the pods that mount the source, their replicas, and scaling them
//! to zero and back through the scale subresource.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::cluster::{Cluster, retry};

/// The owners (Deployment or StatefulSet) of pods that mount a claim, with their replicas.
pub(super) async fn owners_of(
    cluster: &Cluster,
    pods: &[String],
) -> anyhow::Result<BTreeMap<String, i32>> {
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
pub(super) async fn scale<K>(api: Api<K>, name: &str, replicas: Option<i32>) -> anyhow::Result<i32>
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
pub(super) async fn owner_scale(
    cluster: &Cluster,
    key: &str,
    replicas: Option<i32>,
) -> anyhow::Result<i32> {
    let (kind, name) = key.split_once('/').unwrap_or(("", key));
    let (c, ns) = (cluster.client.clone(), cluster.namespace.as_str());
    match kind {
        "deployment" => scale(Api::<Deployment>::namespaced(c, ns), name, replicas).await,
        "statefulset" => scale(Api::<StatefulSet>::namespaced(c, ns), name, replicas).await,
        _ => scale(Api::<ReplicaSet>::namespaced(c, ns), name, replicas).await,
    }
}

pub(super) async fn scale_of(cluster: &Cluster, key: &str) -> anyhow::Result<i32> {
    owner_scale(cluster, key, None).await
}

pub(super) async fn set_scale(cluster: &Cluster, key: &str, replicas: i32) -> anyhow::Result<()> {
    owner_scale(cluster, key, Some(replicas)).await.map(|_| ())
}
