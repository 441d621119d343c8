//! A journal on the cluster: one ConfigMap per plugin and namespace, holding serde entries keyed
//! by string, so that an interrupted command can be resumed, shown and undone even after the
//! objects it started from are gone. The ConfigMap is created on the first write; concurrent
//! writers are reconciled through the API server's optimistic concurrency (409 → read again).

use std::collections::BTreeMap;
use std::marker::PhantomData;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, PostParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cluster::{Cluster, describe, retry, retryable};

/// How often a write is tried again when the journal changed under it.
const WRITE_ATTEMPTS: u32 = 8;

/// The journal of one plugin: entries of type `E` in the ConfigMap `name`.
#[derive(Debug, Clone, Copy)]
pub struct Journal<E> {
    name: &'static str,
    entry: PhantomData<fn() -> E>,
}

impl<E: Serialize + DeserializeOwned> Journal<E> {
    /// The journal kept in the ConfigMap `name` (e.g. `kubectl-upgrade-migrate-pv`).
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            entry: PhantomData,
        }
    }

    /// The ConfigMap's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Reads every entry in the cluster's namespace (an absent journal is empty).
    pub async fn read(&self, cluster: &Cluster) -> anyhow::Result<BTreeMap<String, E>> {
        let api = cluster.config_maps();
        let name = self.name;
        let cm = retry("cannot read the journal", || api.get_opt(name)).await?;
        let mut out = BTreeMap::new();
        for (key, text) in cm.and_then(|c| c.data).unwrap_or_default() {
            let entry: E = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!("journal configmap/{name} entry {key} is unreadable: {e}")
            })?;
            out.insert(key, entry);
        }
        Ok(out)
    }

    /// Reads one entry.
    pub async fn get(&self, cluster: &Cluster, key: &str) -> anyhow::Result<Option<E>> {
        Ok(self.read(cluster).await?.remove(key))
    }

    /// Writes one entry, creating the journal when needed. A concurrent change (409) is
    /// retried from a fresh read, so entries written by others are never lost.
    pub async fn write(&self, cluster: &Cluster, key: &str, entry: &E) -> anyhow::Result<()> {
        let text = serde_json::to_string(entry)?;
        self.update(cluster, |data| {
            data.insert(key.to_string(), text.clone());
        })
        .await
    }

    /// Writes several entries in one update (one read and one write however many there are),
    /// so that an operation on many objects journals them together instead of racing itself
    /// on the ConfigMap's resourceVersion.
    pub async fn write_all(
        &self,
        cluster: &Cluster,
        entries: &[(String, E)],
    ) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let texts = entries
            .iter()
            .map(|(key, entry)| Ok((key.clone(), serde_json::to_string(entry)?)))
            .collect::<anyhow::Result<Vec<(String, String)>>>()?;
        self.update(cluster, |data| {
            for (key, text) in &texts {
                data.insert(key.clone(), text.clone());
            }
        })
        .await
    }

    /// Removes one entry (an absent one is fine).
    pub async fn remove(&self, cluster: &Cluster, key: &str) -> anyhow::Result<()> {
        self.update(cluster, |data| {
            data.remove(key);
        })
        .await
    }

    async fn update(
        &self,
        cluster: &Cluster,
        change: impl Fn(&mut BTreeMap<String, String>),
    ) -> anyhow::Result<()> {
        let api = cluster.config_maps();
        let name = self.name;
        for _ in 0..WRITE_ATTEMPTS {
            let current = retry("cannot read the journal", || api.get_opt(name)).await?;
            let result = match current {
                Some(mut cm) => {
                    change(cm.data.get_or_insert_with(BTreeMap::new));
                    api.replace(name, &PostParams::default(), &cm)
                        .await
                        .map(|_| ())
                }
                None => {
                    let mut data = BTreeMap::new();
                    change(&mut data);
                    let cm = ConfigMap {
                        metadata: ObjectMeta {
                            name: Some(name.into()),
                            labels: Some(BTreeMap::from([(
                                "app.kubernetes.io/managed-by".to_string(),
                                "kubectl-upgrade".to_string(),
                            )])),
                            ..ObjectMeta::default()
                        },
                        data: Some(data),
                        ..ConfigMap::default()
                    };
                    api.create(&PostParams::default(), &cm).await.map(|_| ())
                }
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if retryable(&e) => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await
                }
                Err(e) => {
                    return Err(anyhow::anyhow!(
                        "cannot write the journal configmap/{name}: {}",
                        describe(&e)
                    ));
                }
            }
        }
        anyhow::bail!("cannot write the journal configmap/{name}: it kept changing under us")
    }
}
