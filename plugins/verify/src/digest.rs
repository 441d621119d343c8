//! Tree digests of data volumes (`record --deep`): each claim is mounted read-only at /volume in
//! a short-lived pod of its own (the application's image need not have the tools), listed and
//! hashed there with [`upgrade_shared::tree`]'s commands, and digested here
//! ([`upgrade_shared::tree::digest`]: paths, types, owners, modes, sizes, mtimes, link targets
//! and every regular file's sha256, nothing that differs between file systems, so a verified
//! copy digests the same). The pod runs where the volume can be mounted: its node affinity
//! and, when a pod already uses the claim, that pod's node. It is removed afterwards, and a
//! pod an interrupted run left is replaced.
//!
//! The two listings are held in memory (at most [`upgrade_shared::exec::CAPTURE_LIMIT`] each,
//! about 400,000 entries). A volume the application writes to while it runs digests
//! differently each time: `--deep` proves trees at rest.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use upgrade_shared::cluster::Cluster;
use upgrade_shared::exec::{self, Command, Input};
use upgrade_shared::progress::Progress;
use upgrade_shared::tree;
use upgrade_shared::volume_pod::{self, Mount, VolumePod};

use crate::baseline::VolumeSummary;
use crate::state::State;

/// The image of the read-only pod when none is given: bash, GNU findutils and coreutils.
pub const IMAGE: &str = "debian:bookworm-slim";

/// How long the pod may take to start (pulling its image, attaching the volume), and each
/// listing to run.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Where the claim is mounted in the pod.
const ROOT: &str = "/volume";

/// The node a running pod that mounts `claim` is on (a ReadWriteOnce volume is attached
/// there, and only pods on that node can mount it too).
fn attached_on(state: &State, namespace: &str, claim: &str) -> Option<String> {
    state
        .pods
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
        .filter(|p| upgrade_shared::cluster::pod_active(p))
        .filter(|p| upgrade_shared::cluster::pod_mounts(p, claim))
        .find_map(|p| p.spec.as_ref()?.node_name.clone())
}

/// The read-only pod for `claim`.
pub fn pod_for(
    state: &State,
    namespace: &str,
    claim: &str,
    image: &str,
) -> Result<serde_json::Value, String> {
    let pvc = state
        .claim(namespace, claim)
        .ok_or_else(|| format!("pvc {namespace}/{claim} does not exist"))?;
    let pv = state
        .volume_of(pvc)
        .ok_or_else(|| format!("pvc {namespace}/{claim} is not bound to a volume"))?;
    let node = attached_on(state, namespace, claim);
    let single_pod = pvc
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.as_ref())
        .is_some_and(|m| m.iter().any(|m| m == "ReadWriteOncePod"));
    if single_pod && node.is_some() {
        return Err(format!(
            "pvc {namespace}/{claim} is ReadWriteOncePod and a running pod mounts it, so no other pod can: stop its workload to digest it"
        ));
    }
    let affinity = volume_pod::placement(pv, None, node.as_deref())?;
    Ok(volume_pod::manifest(
        &volume_pod::name("verify", claim),
        namespace,
        image,
        "upgrade-verify",
        "read",
        &[Mount {
            name: "volume",
            claim,
            path: ROOT,
            read_only: true,
        }],
        // Reading every file and directory whatever its owner and mode.
        &["DAC_READ_SEARCH"],
        affinity,
    ))
}

async fn list(side: &VolumePod) -> anyhow::Result<tree::TreeDigest> {
    let pods: kube::Api<Pod> = side.cluster.pods();
    let run =
        |argv: Vec<String>| Command::new(&side.pod, Some("read"), argv).timeout(Some(TIMEOUT));
    let manifest = exec::capture(
        &pods,
        &run(tree::manifest_command(ROOT)),
        Input::None,
        "listing the volume",
    )
    .await?;
    let sums = exec::capture(
        &pods,
        &run(tree::checksum_command(ROOT)),
        Input::None,
        "hashing the volume's files",
    )
    .await?;
    Ok(tree::digest(&manifest[..], &sums[..])?)
}

/// Digests one claim through its read-only pod, within `limit` if one is given (the pod is
/// removed either way).
pub async fn read(
    client: &kube::Client,
    state: &State,
    namespace: &str,
    claim: &str,
    image: &str,
    limit: Option<Duration>,
) -> anyhow::Result<VolumeSummary> {
    let manifest = pod_for(state, namespace, claim, image).map_err(anyhow::Error::msg)?;
    let side = VolumePod {
        cluster: Cluster {
            client: client.clone(),
            namespace: namespace.to_string(),
        },
        pod: volume_pod::name("verify", claim),
        manifest,
    };
    let listed = async {
        volume_pod::start(TIMEOUT, &side).await?;
        list(&side).await
    };
    let listed = match limit {
        Some(limit) => tokio::time::timeout(limit, listed)
            .await
            .unwrap_or_else(|_| {
                Err(anyhow::anyhow!(
                    "not finished within the {}s left of the --timeout",
                    limit.as_secs()
                ))
            }),
        None => listed.await,
    };
    volume_pod::remove(TIMEOUT, &side).await;
    let d = listed?;
    Ok(VolumeSummary {
        files: d.files,
        bytes: d.bytes,
        digest: Some(d.sha256),
        pod: side.pod,
    })
}

/// Digests of the claims, one after the other, shown on `progress` (one item a claim) and,
/// with a `deadline`, none started or still running after it; the ones that could not be read
/// are named with the reason.
pub async fn read_all(
    client: &kube::Client,
    state: &State,
    claims: &[(String, String)],
    image: &str,
    deadline: Option<Instant>,
    progress: Progress,
) -> (Vec<((String, String), VolumeSummary)>, Vec<String>) {
    let mut found = Vec::new();
    let mut missed = Vec::new();
    for (ns, claim) in claims {
        let limit = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let result = if limit.is_some_and(|l| l.is_zero()) {
            Err(anyhow::anyhow!("not started: the --timeout ran out"))
        } else {
            read(client, state, ns, claim, image, limit).await
        };
        match result {
            Ok(s) => found.push(((ns.clone(), claim.clone()), s)),
            Err(e) => missed.push(format!("the tree digest of pvc {ns}/{claim}: {e:#}")),
        }
        progress.inc(1);
    }
    progress.finish();
    (found, missed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_mounts_the_claim_read_only_on_the_node_that_uses_it() {
        let mut state = State {
            namespace: "kubeflow".into(),
            ..State::default()
        };
        for o in [
            serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data", "namespace": "kubeflow"},
                "spec": {"volumeName": "pv-1"}, "status": {"phase": "Bound"}}),
            serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": "pv-1"}, "spec": {}}),
            serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "minio-0", "namespace": "kubeflow"},
                "spec": {"nodeName": "node-a", "containers": [{"name": "minio"}],
                    "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]},
                "status": {"phase": "Running"}}),
        ] {
            state.add(o).expect("loads");
        }
        let pod = pod_for(&state, "kubeflow", "data", IMAGE).expect("pod");
        assert_eq!(pod["metadata"]["name"], "verify-data");
        let spec = &pod["spec"];
        assert_eq!(
            spec["volumes"][0]["persistentVolumeClaim"],
            serde_json::json!({"claimName": "data", "readOnly": true})
        );
        assert_eq!(spec["containers"][0]["volumeMounts"][0]["readOnly"], true);
        assert_eq!(
            spec["containers"][0]["securityContext"]["capabilities"]["add"],
            serde_json::json!(["DAC_READ_SEARCH"])
        );
        assert_eq!(
            spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
                [0]["matchExpressions"][0]["values"],
            serde_json::json!(["node-a"])
        );
        assert_eq!(
            pod_for(&state, "kubeflow", "absent", IMAGE).unwrap_err(),
            "pvc kubeflow/absent does not exist"
        );
        state.claims[0]
            .spec
            .get_or_insert_with(Default::default)
            .access_modes = Some(vec!["ReadWriteOncePod".into()]);
        assert!(
            pod_for(&state, "kubeflow", "data", IMAGE)
                .unwrap_err()
                .contains("is ReadWriteOncePod and a running pod mounts it")
        );
    }
}
