//! Cluster access every plugin shares: a handle on one namespace of a cluster, bounded retries
//! of the failures a flaky control plane produces (409 Conflict, 429, 5xx and dropped
//! connections), and polling a condition with a deadline.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

pub use crate::api::describe;
use crate::flags::RetryBudget;

/// How many times a retryable failure is tried in all (the default [`RetryBudget`]'s).
pub const ATTEMPTS: u32 = 6;

/// A namespace of a cluster: the client and the namespace its namespaced calls go to.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub namespace: String,
}

/// True for failures worth another try: the API server's optimistic-concurrency refusal,
/// throttling, server errors, and transport failures — but not a request that got no answer
/// within its whole `--request-timeout`: a server silent that long is not answering.
pub fn retryable(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(s) => matches!(s.code, 409 | 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => !crate::deadline::timed_out(err),
        _ => false,
    }
}

/// True for a 404.
pub fn not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404)
}

/// Runs `op` until it succeeds, fails for good, or the default [`RetryBudget`] is spent (at
/// most [`ATTEMPTS`] tries within its total time; a request that used up its whole
/// `--request-timeout` is not tried again). The error names `what` failed and the server's
/// one-line reason.
pub async fn retry<T, F, Fut>(what: &str, op: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    retry_within(RetryBudget::default(), what, op).await
}

/// [`retry`] within a budget of the caller's.
pub async fn retry_within<T, F, Fut>(budget: RetryBudget, what: &str, op: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    retry_kube(budget, op)
        .await
        .map_err(|e| anyhow::anyhow!("{what}: {}", describe(&e)))
}

/// [`retry_within`] for callers with their own error type: the last error as the API client
/// gave it.
pub async fn retry_kube<T, F, Fut>(budget: RetryBudget, mut op: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let started = Instant::now();
    let mut tried = 0;
    loop {
        tried += 1;
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => match retryable(&e)
                .then(|| budget.next_pause(tried, started.elapsed(), &e))
                .flatten()
            {
                Some(pause) => tokio::time::sleep(pause).await,
                None => return Err(e),
            },
        }
    }
}

/// Polls `ready` until it returns true, or fails once `timeout` has passed, naming `what` it
/// waited for. The pause grows from 200 ms to 2 s.
pub async fn wait<F, Fut>(timeout: Duration, what: &str, mut ready: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(200);
    loop {
        if ready().await? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!("timed out after {}s waiting for {what}", timeout.as_secs());
        }
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// True for a pod that has not finished (its containers may still hold its volumes).
pub fn pod_active(p: &Pod) -> bool {
    let phase = p
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending");
    phase != "Succeeded" && phase != "Failed"
}

/// True when a pod mounts the claim `claim`.
pub fn pod_mounts(p: &Pod, claim: &str) -> bool {
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
}

impl Cluster {
    /// The same cluster, another namespace.
    pub fn in_namespace(&self, namespace: &str) -> Cluster {
        Cluster {
            client: self.client.clone(),
            namespace: namespace.to_string(),
        }
    }

    /// A namespaced API of any kind in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn claims(&self) -> Api<PersistentVolumeClaim> {
        self.api()
    }
    pub fn volumes(&self) -> Api<PersistentVolume> {
        Api::all(self.client.clone())
    }
    pub fn pods(&self) -> Api<Pod> {
        self.api()
    }
    pub fn config_maps(&self) -> Api<ConfigMap> {
        self.api()
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

    /// A pod, or None when it does not exist.
    pub async fn pod(&self, name: &str) -> anyhow::Result<Option<Pod>> {
        let api = self.pods();
        retry(&format!("cannot read pod/{name}"), || api.get_opt(name)).await
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

    /// Pods that mount a claim and have not finished (terminating ones included).
    pub async fn pods_mounting(&self, claim: &str) -> anyhow::Result<Vec<Pod>> {
        let api = self.pods();
        let params = ListParams::default();
        let pods = retry("cannot list pods", || api.list(&params)).await?;
        Ok(pods
            .items
            .into_iter()
            .filter(pod_active)
            .filter(|p| pod_mounts(p, claim))
            .collect())
    }

    /// Names of pods that mount a claim and have not finished.
    pub async fn pods_using(&self, claim: &str) -> anyhow::Result<Vec<String>> {
        Ok(self
            .pods_mounting(claim)
            .await?
            .into_iter()
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

    /// Deletes a claim only if it is still the object with `uid` (when given); one already
    /// gone is fine. A claim of that name with another UID is a 409 Conflict, not retried.
    pub async fn delete_claim_checked(&self, name: &str, uid: Option<&str>) -> anyhow::Result<()> {
        delete_checked(self.claims(), &format!("pvc/{name}"), name, uid).await
    }

    /// Deletes a volume only if it is still the object with `uid` (when given).
    pub async fn delete_volume_checked(&self, name: &str, uid: Option<&str>) -> anyhow::Result<()> {
        delete_checked(self.volumes(), &format!("pv/{name}"), name, uid).await
    }

    /// Deletes a pod; one already gone is fine.
    pub async fn delete_pod(&self, name: &str) -> anyhow::Result<()> {
        let api = self.pods();
        retry(&format!("cannot delete pod/{name}"), || async {
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

/// Deletes `name` with a UID precondition (kube-apiserver answers 409 Conflict when the object
/// has another UID: `Precondition failed: UID in precondition: …`); gone already is fine.
async fn delete_checked<K>(
    api: Api<K>,
    what: &str,
    name: &str,
    uid: Option<&str>,
) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut params = DeleteParams::default();
    if let Some(uid) = uid {
        params.preconditions = Some(kube::api::Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        });
    }
    // Another UID is answered 409 Conflict, which `retry` would take for a race: it is told
    // apart here and never retried.
    let conflict = std::sync::Mutex::new(None);
    let result = retry(&format!("cannot delete {what}"), || async {
        match api.delete(name, &params).await {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 && uid.is_some() => {
                if let Ok(mut c) = conflict.lock() {
                    *c = Some(s.message.clone());
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    })
    .await;
    if let Some(message) = conflict.lock().ok().and_then(|mut c| c.take()) {
        anyhow::bail!("{what} is no longer the object that was checked: {message}");
    }
    result
}
