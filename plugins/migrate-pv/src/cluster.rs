//! The seam between plans and the API server: every read and write the plugin makes, with the
//! retries a flaky control plane needs (409 Conflict, 429, 5xx and dropped connections are
//! retried; everything else stops the command).

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

/// How many times a retryable failure is retried, and the first pause (doubled each time).
const ATTEMPTS: u32 = 6;
const FIRST_PAUSE: Duration = Duration::from_millis(200);

/// A namespace of a cluster.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub namespace: String,
}

/// True for failures worth another try: the API server's optimistic-concurrency refusal,
/// throttling, server errors, and transport failures.
pub fn retryable(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(s) => matches!(s.code, 409 | 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// True for a 404.
pub fn not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404)
}

/// Runs `op` until it succeeds, fails for good, or runs out of attempts.
pub async fn retry<T, F, Fut>(what: &str, mut op: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut pause = FIRST_PAUSE;
    for attempt in 1..=ATTEMPTS {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if retryable(&e) && attempt < ATTEMPTS => {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(e) => return Err(anyhow::anyhow!("{what}: {}", describe(&e))),
        }
    }
    unreachable!("the last attempt returns")
}

pub use upgrade_shared::api::describe;

impl Cluster {
    pub fn claims(&self) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
    pub fn volumes(&self) -> Api<PersistentVolume> {
        Api::all(self.client.clone())
    }
    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
    pub fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// A claim, or None when it does not exist.
    pub async fn claim(&self, name: &str) -> anyhow::Result<Option<PersistentVolumeClaim>> {
        let api = self.claims();
        retry(&format!("cannot read pvc/{name}"), || api.get_opt(name)).await
    }

    /// A volume, or None when it does not exist.
    pub async fn volume(&self, name: &str) -> anyhow::Result<Option<PersistentVolume>> {
        let api = self.volumes();
        retry(&format!("cannot read pv/{name}"), || api.get_opt(name)).await
    }

    /// The volume a claim is bound to.
    pub async fn volume_of(
        &self,
        claim: &PersistentVolumeClaim,
    ) -> anyhow::Result<Option<PersistentVolume>> {
        match claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()) {
            Some(v) if !v.is_empty() => self.volume(v).await,
            _ => Ok(None),
        }
    }

    /// Claims matching a label selector.
    pub async fn claims_by_selector(
        &self,
        selector: &str,
    ) -> anyhow::Result<Vec<PersistentVolumeClaim>> {
        let api = self.claims();
        let params = ListParams::default().labels(selector);
        Ok(retry("cannot list claims", || api.list(&params))
            .await?
            .items)
    }

    /// Names of pods that mount a claim and have not finished.
    pub async fn pods_using(&self, claim: &str) -> anyhow::Result<Vec<String>> {
        let api = self.pods();
        let params = ListParams::default();
        let pods = retry("cannot list pods", || api.list(&params)).await?;
        Ok(pods
            .items
            .into_iter()
            .filter(|p| {
                let phase = p
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.as_deref())
                    .unwrap_or("Pending");
                phase != "Succeeded" && phase != "Failed"
            })
            .filter(|p| {
                p.spec
                    .as_ref()
                    .and_then(|s| s.volumes.as_ref())
                    .is_some_and(|vs| {
                        vs.iter().any(|v| {
                            v.persistent_volume_claim
                                .as_ref()
                                .is_some_and(|c| c.claim_name == claim)
                        })
                    })
            })
            .filter_map(|p| p.metadata.name)
            .collect())
    }

    /// Volumes carrying an annotation, whose claimRef points into this namespace.
    pub async fn volumes_annotated(&self, key: &str) -> anyhow::Result<Vec<PersistentVolume>> {
        let api = self.volumes();
        let params = ListParams::default();
        let all = retry("cannot list volumes", || api.list(&params)).await?;
        Ok(all
            .items
            .into_iter()
            .filter(|v| {
                v.metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(key))
            })
            .filter(|v| {
                v.spec
                    .as_ref()
                    .and_then(|s| s.claim_ref.as_ref())
                    .and_then(|r| r.namespace.as_deref())
                    == Some(self.namespace.as_str())
            })
            .collect())
    }

    /// Merge-patches a volume.
    pub async fn patch_volume(
        &self,
        name: &str,
        patch: serde_json::Value,
    ) -> anyhow::Result<PersistentVolume> {
        let api = self.volumes();
        let params = PatchParams::default();
        let patch = Patch::Merge(&patch);
        retry(&format!("cannot change pv/{name}"), || {
            api.patch(name, &params, &patch)
        })
        .await
    }

    /// Deletes a claim; a claim already gone is fine.
    pub async fn delete_claim(&self, name: &str) -> anyhow::Result<()> {
        let api = self.claims();
        retry(&format!("cannot delete pvc/{name}"), || async {
            match api.delete(name, &DeleteParams::default()).await {
                Err(e) if not_found(&e) => Ok(()),
                Err(e) => Err(e),
                Ok(_) => Ok(()),
            }
        })
        .await
    }

    /// Deletes a volume object; one already gone is fine.
    pub async fn delete_volume(&self, name: &str) -> anyhow::Result<()> {
        let api = self.volumes();
        retry(&format!("cannot delete pv/{name}"), || async {
            match api.delete(name, &DeleteParams::default()).await {
                Err(e) if not_found(&e) => Ok(()),
                Err(e) => Err(e),
                Ok(_) => Ok(()),
            }
        })
        .await
    }

    /// Creates a claim; one that already exists with the same volume is fine.
    pub async fn create_claim(&self, claim: &PersistentVolumeClaim) -> anyhow::Result<()> {
        let api = self.claims();
        let name = claim.metadata.name.clone().unwrap_or_default();
        let wanted = claim.spec.as_ref().and_then(|s| s.volume_name.clone());
        retry(&format!("cannot create pvc/{name}"), || async {
            match api.create(&PostParams::default(), claim).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {
                    let existing = api.get(&name).await?;
                    if existing.spec.as_ref().and_then(|s| s.volume_name.clone()) == wanted {
                        Ok(())
                    } else {
                        Err(kube::Error::Api(s))
                    }
                }
                Err(e) => Err(e),
            }
        })
        .await
    }
}
