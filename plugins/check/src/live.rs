//! Reading the application from a cluster: one paged list per kind and namespace (never an
//! object-by-object walk), volumes cluster-wide, the custom resources the profile reads and
//! migrate-pv's journal.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams};
use upgrade_shared::list::{custom_resources, list_all};
use upgrade_shared::profile::{Profile, VersionSource};

use crate::snapshot::{MIGRATE_PV_JOURNAL, Snapshot};

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
    // migrate-pv's journal: what was retained, adopted and copied before this check.
    let journals = upgrade_shared::list::list_matching(
        Api::<ConfigMap>::namespaced(client.clone(), namespace),
        ListParams::default().fields(&format!("metadata.name={MIGRATE_PV_JOURNAL}")),
        "configmaps",
        namespace,
    )
    .await?;
    for cm in journals {
        let data = serde_json::to_value(&cm.data)?;
        snapshot.add_journal(Some(&data));
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
        // A CRD that is not installed means the application is not here in that form.
        if let Some(objects) = custom_resources(client, namespace, api_version, kind).await? {
            snapshot.custom.extend(objects);
        }
    }
    Ok(snapshot)
}

/// How long the profile's status command may take in its pod.
const STATUS_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The database's own status, printed by the profile's client-compatibility command in the
/// first Running pod of its components that has the container; or one line saying why it could
/// not be read (no such pod, the exec failed, the output is not JSON).
pub async fn database_status(
    client: &kube::Client,
    snapshot: &Snapshot,
    profile: &Profile,
) -> Option<Result<serde_json::Value, String>> {
    let check = profile.client_compatibility.as_ref()?;
    let pod = check
        .components
        .iter()
        .filter_map(|name| profile.component(name))
        .flat_map(|c| crate::context::component_pods(snapshot, c))
        .find(|p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                && p.spec
                    .as_ref()
                    .is_some_and(|s| s.containers.iter().any(|c| c.name == check.container))
        });
    let Some(pod) = pod else {
        return Some(Err(format!(
            "no Running pod of {} with container {} to run {} in",
            check.components.join(", "),
            check.container,
            check.command.join(" ")
        )));
    };
    let name = pod.metadata.name.clone().unwrap_or_default();
    let ns = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| snapshot.namespace.clone());
    let command =
        upgrade_shared::exec::Command::new(&name, Some(&check.container), check.command.clone())
            .timeout(Some(STATUS_LIMIT));
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let what = check.command.join(" ");
    Some(
        match upgrade_shared::exec::capture(
            &pods,
            &command,
            upgrade_shared::exec::Input::None,
            &what,
        )
        .await
        {
            Err(e) => Err(upgrade_shared::api::chain(&e)),
            Ok(out) => serde_json::from_slice(&out)
                .map_err(|e| format!("{what} in pod/{name} did not print a JSON document: {e}")),
        },
    )
}
