//! What a verified copy proves and how it is checked again later: the UIDs of both claims and
//! both volumes, and a digest of the source's listing. `cleanup` deletes a source only while
//! the very objects the copy went into still exist and the source still lists exactly as it
//! did when the copy was verified (anything written to it since would be lost).

use std::time::Duration;

use k8s_openapi::api::core::v1::PersistentVolume;
use upgrade_shared::cluster::Cluster;

use super::pod::{Side, migration_pod, placement, pod_name, remove_pod, start_pod};
use super::stream::{file_sha256, run_in};
use crate::journal::CopyProof;
use crate::tree;

fn uid(meta: &kube::api::ObjectMeta) -> String {
    meta.uid.clone().unwrap_or_default()
}

/// Reads the UIDs of both sides of a verified copy.
pub(super) async fn gather(
    source_cluster: &Cluster,
    dest_cluster: &Cluster,
    source: &str,
    dest: &str,
    manifest_sha256: String,
    verified_at: String,
) -> anyhow::Result<CopyProof> {
    let missing = |what: String| anyhow::anyhow!("{what} disappeared right after the copy");
    let sc = source_cluster
        .claim(source)
        .await?
        .ok_or_else(|| missing(format!("pvc/{source}")))?;
    let sv = source_cluster
        .volume_of(&sc)
        .await?
        .ok_or_else(|| missing(format!("the volume of pvc/{source}")))?;
    let dc = dest_cluster
        .claim(dest)
        .await?
        .ok_or_else(|| missing(format!("pvc/{dest}")))?;
    let dv = dest_cluster
        .volume_of(&dc)
        .await?
        .ok_or_else(|| missing(format!("the volume of pvc/{dest}")))?;
    Ok(CopyProof {
        source_claim_uid: uid(&sc.metadata),
        source_volume: sv.metadata.name.clone().unwrap_or_default(),
        source_volume_uid: uid(&sv.metadata),
        dest_claim_uid: uid(&dc.metadata),
        dest_volume: dv.metadata.name.clone().unwrap_or_default(),
        dest_volume_uid: uid(&dv.metadata),
        manifest_sha256,
        verified_at: Some(verified_at),
    })
}

/// Lists the source claim again in a short-lived pod (read-only) and returns the sha256 of the
/// listing, comparable with [`CopyProof::manifest_sha256`].
pub async fn source_digest(
    cluster: &Cluster,
    claim: &str,
    volume: &PersistentVolume,
    image: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    let pod = pod_name(&format!("check-{claim}"));
    let affinity = placement(volume, None, None).map_err(anyhow::Error::msg)?;
    let side = Side {
        cluster: cluster.clone(),
        manifest: migration_pod(&pod, &cluster.namespace, image, Some(claim), None, affinity),
        pod,
    };
    let listed = async {
        start_pod(timeout, &side).await?;
        let listing = run_in(&side, tree::manifest_command("/source"), "listing /source").await?;
        file_sha256(&listing)
    }
    .await;
    remove_pod(timeout, &side).await;
    listed
}
