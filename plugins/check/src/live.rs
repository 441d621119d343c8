//! Reading the application from a cluster: one paged list per kind and namespace (never an
//! object-by-object walk), volumes cluster-wide, and the custom resources the profile reads.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use serde::de::DeserializeOwned;
use upgrade_shared::api::describe;
use upgrade_shared::profile::{Profile, VersionSource};

use crate::snapshot::Snapshot;

/// Page size, as kubectl uses for `get` (`--chunk-size=500`).
const PAGE: u32 = 500;

async fn list_all<K>(api: Api<K>, what: &str, ns: &str) -> anyhow::Result<Vec<K>>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(PAGE);
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let page = api
            .list(&params)
            .await
            .map_err(|e| anyhow::anyhow!("cannot list {what} in {ns}: {}", describe(&e)))?;
        out.extend(page.items);
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(out),
        }
    }
}

/// Reads everything the check needs from the cluster.
pub async fn load(
    client: &kube::Client,
    namespace: &str,
    profile: &Profile,
) -> anyhow::Result<Snapshot> {
    let namespaces: BTreeSet<String> = std::iter::once(namespace.to_string())
        .chain(
            profile
                .components
                .iter()
                .filter_map(|c| c.namespace.clone()),
        )
        .collect();
    let mut snapshot = Snapshot {
        namespace: namespace.to_string(),
        volumes: list_all(
            Api::<PersistentVolume>::all(client.clone()),
            "persistentvolumes",
            "the cluster",
        )
        .await?,
        ..Snapshot::default()
    };
    for ns in &namespaces {
        let c = client.clone();
        let (pods, claims, deployments, statefulsets, daemonsets, pdbs) = tokio::try_join!(
            list_all(Api::<Pod>::namespaced(c.clone(), ns), "pods", ns),
            list_all(
                Api::<PersistentVolumeClaim>::namespaced(c.clone(), ns),
                "persistentvolumeclaims",
                ns
            ),
            list_all(
                Api::<Deployment>::namespaced(c.clone(), ns),
                "deployments",
                ns
            ),
            list_all(
                Api::<StatefulSet>::namespaced(c.clone(), ns),
                "statefulsets",
                ns
            ),
            list_all(
                Api::<DaemonSet>::namespaced(c.clone(), ns),
                "daemonsets",
                ns
            ),
            list_all(
                Api::<PodDisruptionBudget>::namespaced(c.clone(), ns),
                "poddisruptionbudgets",
                ns
            ),
        )?;
        snapshot.pods.extend(pods);
        snapshot.claims.extend(claims);
        snapshot.deployments.extend(deployments);
        snapshot.statefulsets.extend(statefulsets);
        snapshot.daemonsets.extend(daemonsets);
        snapshot.pdbs.extend(pdbs);
    }
    let mut seen = BTreeSet::new();
    for source in &profile.version_sources {
        let VersionSource::CustomResource {
            api_version, kind, ..
        } = source
        else {
            continue;
        };
        if !seen.insert((api_version.clone(), kind.clone())) {
            continue;
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        // A CRD that is not installed means the application is not here in that form.
        let Ok((resource, _)) = kube::discovery::pinned_kind(client, &gvk).await else {
            continue;
        };
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource);
        for object in list_all(api, &resource.plural, namespace).await? {
            let mut value = serde_json::to_value(&object)?;
            value["apiVersion"] = api_version.clone().into();
            value["kind"] = kind.clone().into();
            snapshot.custom.push(value);
        }
    }
    Ok(snapshot)
}
