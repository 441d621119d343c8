//! The journal: a ConfigMap in the namespace recording each operation before its steps are
//! taken, so that an interrupted run can be resumed, shown by `status` and undone by `rollback`
//! even after the objects it started from are gone.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, PostParams};

use crate::cluster::{Cluster, describe, retry};
use crate::plan::AdoptRecord;

/// Name of the journal ConfigMap.
pub const NAME: &str = "kubectl-upgrade-migrate-pv";

/// One journal entry.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Entry {
    /// An adoption of a volume under a new claim.
    Adopt {
        record: AdoptRecord,
        /// `started`, `done` or `rolled-back`.
        state: String,
    },
    /// A copy between claims; owners scaled down for it, to scale back.
    Copy {
        source: String,
        dest: String,
        /// `kind/name` → replicas before quiescing.
        quiesced: BTreeMap<String, i32>,
        state: String,
    },
}

/// Key of an adoption entry.
pub fn adopt_key(new_claim: &str) -> String {
    format!("adopt.{new_claim}")
}

/// Key of a copy entry.
pub fn copy_key(dest: &str) -> String {
    format!("copy.{dest}")
}

/// Reads every entry (an absent journal is empty).
pub async fn read(cluster: &Cluster) -> anyhow::Result<BTreeMap<String, Entry>> {
    let api = cluster.config_maps();
    let cm = retry("cannot read the journal", || api.get_opt(NAME)).await?;
    let mut out = BTreeMap::new();
    for (key, text) in cm.and_then(|c| c.data).unwrap_or_default() {
        let entry: Entry = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!("journal configmap/{NAME} entry {key} is unreadable: {e}")
        })?;
        out.insert(key, entry);
    }
    Ok(out)
}

/// Writes one entry, creating the journal when needed. A concurrent change (409) is retried
/// from a fresh read, so entries written by others are never lost.
pub async fn write(cluster: &Cluster, key: &str, entry: &Entry) -> anyhow::Result<()> {
    let api = cluster.config_maps();
    let text = serde_json::to_string(entry)?;
    for _ in 0..8 {
        let current = retry("cannot read the journal", || api.get_opt(NAME)).await?;
        let result = match current {
            Some(mut cm) => {
                cm.data
                    .get_or_insert_with(BTreeMap::new)
                    .insert(key.to_string(), text.clone());
                api.replace(NAME, &PostParams::default(), &cm)
                    .await
                    .map(|_| ())
            }
            None => {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(NAME.into()),
                        labels: Some(BTreeMap::from([(
                            "app.kubernetes.io/managed-by".to_string(),
                            "kubectl-upgrade".to_string(),
                        )])),
                        ..ObjectMeta::default()
                    },
                    data: Some(BTreeMap::from([(key.to_string(), text.clone())])),
                    ..ConfigMap::default()
                };
                api.create(&PostParams::default(), &cm).await.map(|_| ())
            }
        };
        match result {
            Ok(()) => return Ok(()),
            Err(e) if crate::cluster::retryable(&e) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "cannot write the journal configmap/{NAME}: {}",
                    describe(&e)
                ));
            }
        }
    }
    anyhow::bail!("cannot write the journal configmap/{NAME}: it kept changing under us")
}
