//! Cluster access: reading the namespace's state the way `kubectl get` does (one paged list
//! per kind and namespace), the volumes behind its claims, and the baseline ConfigMap.
//!
//! Volumes are cluster-scoped: listing them all costs as much as the whole cluster holds,
//! while a namespace's claims name their volumes. Up to [`BY_NAME`] volumes are read by name
//! (concurrently); past that one paged list of all volumes is cheaper.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, ObjectMeta, PostParams};
use upgrade_shared::api::describe;
use upgrade_shared::cluster::{Cluster, retry};
use upgrade_shared::list::{custom_resources, list_all};
use upgrade_shared::profile::{Profile, VersionSource};
use upgrade_shared::pv_journal;

use crate::baseline::{Baseline, CONFIG_MAP, CONFIG_MAP_KEY};
use crate::state::State;

/// Volumes read one by one at most; more are listed.
pub const BY_NAME: usize = 64;

/// The namespaces a profile's components live in, the asked one first.
pub fn namespaces(namespace: &str, profile: Option<&Profile>) -> Vec<String> {
    let mut out = vec![namespace.to_string()];
    for c in profile.iter().flat_map(|p| p.components.iter()) {
        if let Some(ns) = &c.namespace
            && !out.contains(ns)
        {
            out.push(ns.clone());
        }
    }
    out
}

/// Reads the state of `namespace` (and the profile's other namespaces); `also_volumes` names
/// volumes to read even when no claim names them now (the recorded ones).
pub async fn load(
    client: &kube::Client,
    namespace: &str,
    profile: Option<&Profile>,
    also_volumes: &[String],
) -> anyhow::Result<State> {
    let mut state = State {
        namespace: namespace.to_string(),
        ..State::default()
    };
    for ns in namespaces(namespace, profile) {
        if ns != namespace {
            state.other_namespaces.push(ns.clone());
        }
        let c = client.clone();
        let (pods, claims, deployments, statefulsets, daemonsets, jobs) = tokio::try_join!(
            list_all(Api::<Pod>::namespaced(c.clone(), &ns), "pods", &ns),
            list_all(
                Api::<PersistentVolumeClaim>::namespaced(c.clone(), &ns),
                "persistentvolumeclaims",
                &ns
            ),
            list_all(
                Api::<Deployment>::namespaced(c.clone(), &ns),
                "deployments",
                &ns
            ),
            list_all(
                Api::<StatefulSet>::namespaced(c.clone(), &ns),
                "statefulsets",
                &ns
            ),
            list_all(
                Api::<DaemonSet>::namespaced(c.clone(), &ns),
                "daemonsets",
                &ns
            ),
            list_all(Api::<Job>::namespaced(c.clone(), &ns), "jobs", &ns),
        )?;
        state.pods.extend(pods);
        state.claims.extend(claims);
        state.deployments.extend(deployments);
        state.statefulsets.extend(statefulsets);
        state.daemonsets.extend(daemonsets);
        state.jobs.extend(jobs);
        let journal = pv_journal::JOURNAL
            .read(&Cluster {
                client: client.clone(),
                namespace: ns.clone(),
            })
            .await
            .with_context(|| format!("cannot read migrate-pv's journal in {ns}"))?;
        if !journal.is_empty() {
            state.pv_journal.insert(ns, journal);
        }
    }
    let mut wanted: BTreeSet<String> = state
        .claims
        .iter()
        .filter_map(|c| c.spec.as_ref().and_then(|s| s.volume_name.clone()))
        .collect();
    wanted.extend(also_volumes.iter().filter(|v| !v.is_empty()).cloned());
    state.volumes = volumes(client, &wanted).await?;
    let mut seen = BTreeSet::new();
    for source in profile.iter().flat_map(|p| p.version_sources.iter()) {
        if let VersionSource::CustomResource {
            api_version, kind, ..
        } = source
            && seen.insert((api_version.clone(), kind.clone()))
            && let Some(objects) = custom_resources(client, namespace, api_version, kind).await?
        {
            state.custom.extend(objects);
        }
    }
    Ok(state)
}

async fn volumes(
    client: &kube::Client,
    names: &BTreeSet<String>,
) -> anyhow::Result<Vec<PersistentVolume>> {
    let api = Api::<PersistentVolume>::all(client.clone());
    if names.len() > BY_NAME {
        let all = list_all(api, "persistentvolumes", "the cluster").await?;
        return Ok(all
            .into_iter()
            .filter(|v| v.metadata.name.as_ref().is_some_and(|n| names.contains(n)))
            .collect());
    }
    let gets = names.iter().map(|name| {
        let (api, name) = (api.clone(), name.clone());
        async move {
            retry(&format!("cannot read persistentvolume {name}"), || {
                api.get_opt(&name)
            })
            .await
        }
    });
    let found = futures_join_all(gets).await?;
    Ok(found.into_iter().flatten().collect())
}

/// Runs the futures concurrently and collects their results in order.
async fn futures_join_all<F, T>(futures: impl IntoIterator<Item = F>) -> anyhow::Result<Vec<T>>
where
    F: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, f) in futures.into_iter().enumerate() {
        set.spawn(async move { (i, f.await) });
    }
    let mut out: BTreeMap<usize, T> = BTreeMap::new();
    while let Some(done) = set.join_next().await {
        let (i, result) = done.context("a volume read stopped")?;
        out.insert(i, result?);
    }
    Ok(out.into_values().collect())
}

/// The stored baseline ConfigMap, if there is one.
pub async fn stored(client: &kube::Client, namespace: &str) -> anyhow::Result<Option<ConfigMap>> {
    let api = Api::<ConfigMap>::namespaced(client.clone(), namespace);
    retry(
        &format!("cannot read configmap/{CONFIG_MAP} in {namespace}"),
        || api.get_opt(CONFIG_MAP),
    )
    .await
}

/// Reads the baseline stored in the namespace.
pub async fn read_baseline(client: &kube::Client, namespace: &str) -> anyhow::Result<Baseline> {
    let Some(cm) = stored(client, namespace).await? else {
        anyhow::bail!(
            "no baseline in namespace {namespace} (configmap/{CONFIG_MAP} is missing): run `kubectl upgrade-verify record -n {namespace}` before the upgrade, or pass --baseline FILE"
        );
    };
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(CONFIG_MAP_KEY))
        .with_context(|| {
            format!("configmap/{CONFIG_MAP} in {namespace} has no {CONFIG_MAP_KEY}")
        })?;
    Ok(Baseline::from_json(
        &format!("configmap/{CONFIG_MAP} in {namespace}"),
        text,
    )?)
}

/// Stores the baseline: creates the ConfigMap, or replaces the one read as `existing` (its
/// resourceVersion makes a concurrent change fail with 409 instead of being overwritten, so
/// the write is not retried: the user agreed to replace the baseline they were shown).
pub async fn store_baseline(
    client: &kube::Client,
    namespace: &str,
    baseline: &Baseline,
    existing: Option<ConfigMap>,
) -> anyhow::Result<()> {
    let api = Api::<ConfigMap>::namespaced(client.clone(), namespace);
    let data = BTreeMap::from([(CONFIG_MAP_KEY.to_string(), baseline.to_json())]);
    let labels = BTreeMap::from([(
        "app.kubernetes.io/managed-by".to_string(),
        "kubectl-upgrade-verify".to_string(),
    )]);
    let result = match existing {
        Some(mut cm) => {
            cm.data = Some(data);
            cm.metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .extend(labels);
            api.replace(CONFIG_MAP, &PostParams::default(), &cm).await
        }
        None => {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(CONFIG_MAP.into()),
                    namespace: Some(namespace.into()),
                    labels: Some(labels),
                    ..ObjectMeta::default()
                },
                data: Some(data),
                ..ConfigMap::default()
            };
            api.create(&PostParams::default(), &cm).await
        }
    };
    result.map(|_| ()).map_err(|e| {
        anyhow::anyhow!(
            "cannot store configmap/{CONFIG_MAP} in {namespace}: {}",
            describe(&e)
        )
    })
}
