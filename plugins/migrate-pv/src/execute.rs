//! Carries out a plan step by step. Each step is idempotent (it checks before it acts), so a
//! run killed at any point is finished by running the same command again.

use std::time::Duration;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;
use serde_json::json;

use crate::plan::{ADOPTED_FROM, Action, ORIGINAL_POLICY, Plan};
use upgrade_shared::cluster::{Cluster, wait};
use upgrade_shared::exit;

/// How long to wait for a claim to bind or go away. The volume binder resyncs every 15 s on a
/// real cluster, so this leaves room for several rounds.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub bind: Duration,
}

/// Reports what happened to each step, for the final message.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    pub done: Vec<String>,
}

/// Runs the steps in order; on failure says which step stopped and what state things are in.
pub async fn run(
    cluster: &Cluster,
    plan: &Plan,
    timeouts: Timeouts,
    progress: &dyn Fn(&str),
) -> anyhow::Result<Report> {
    let mut report = Report::default();
    for (i, step) in plan.steps.iter().enumerate() {
        progress(&format!(
            "[{}/{}] {}",
            i + 1,
            plan.steps.len(),
            step.describe()
        ));
        step_once(cluster, step, timeouts).await.map_err(|e| {
            if exit::code_of(&e) == exit::FINDINGS {
                return e.context(format!(
                    "step {} of {} ({}) refused",
                    i + 1,
                    plan.steps.len(),
                    step.describe()
                ));
            }
            e.context(format!(
                "step {} of {} ({}) did not complete; what came before it is done and recorded — run the same command again to continue, or `kubectl upgrade-migrate-pv status -n {}` to see where things stand",
                i + 1,
                plan.steps.len(),
                step.describe(),
                cluster.namespace
            ))
        })?;
        report.done.push(step.describe());
    }
    Ok(report)
}

async fn step_once(cluster: &Cluster, step: &Action, timeouts: Timeouts) -> anyhow::Result<()> {
    match step {
        Action::SetPolicy {
            volume,
            from,
            to,
            record,
        } => {
            let annotations = if *record {
                // Keep the first original: a second retain must not record "Retain" as original.
                let existing = cluster
                    .volume(volume)
                    .await?
                    .and_then(|v| v.metadata.annotations)
                    .and_then(|a| a.get(ORIGINAL_POLICY).cloned());
                json!({ ORIGINAL_POLICY: existing.unwrap_or_else(|| from.clone()) })
            } else {
                json!({ ORIGINAL_POLICY: null })
            };
            cluster
                .patch_volume(volume, json!({"metadata": {"annotations": annotations}, "spec": {"persistentVolumeReclaimPolicy": to}}))
                .await?;
        }
        Action::DeleteVolume { volume, uid, .. } => {
            cluster
                .delete_volume_checked(volume, uid.as_deref())
                .await?;
            wait(
                timeouts.bind,
                &format!("pv/{volume} to be deleted"),
                || async { Ok(cluster.volume(volume).await?.is_none()) },
            )
            .await?;
        }
        Action::DeleteClaim { claim, uid, .. } => {
            // Live state, right before acting: a pod that started since the plan would keep
            // the claim (pvc-protection) and lose what it writes once it stops.
            let users = cluster.pods_using(claim).await?;
            if !users.is_empty() {
                return Err(exit::refused(format!(
                    "pvc/{claim} is mounted by {}: nothing was deleted; stop them first",
                    users
                        .iter()
                        .map(|p| format!("pod/{p}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            cluster.delete_claim_checked(claim, uid.as_deref()).await?;
            // The pvc-protection finalizer holds the claim until no pod uses it.
            wait(
                timeouts.bind,
                &format!("pvc/{claim} to be deleted"),
                || async { Ok(cluster.claim(claim).await?.is_none()) },
            )
            .await?;
        }
        Action::CheckUnchanged {
            claim,
            volume,
            copy_to,
            digest,
            image,
        } => {
            let pv = cluster
                .volume(volume)
                .await?
                .ok_or_else(|| anyhow::anyhow!("pv/{volume} is gone"))?;
            let now = crate::copy::proof::source_digest(cluster, claim, &pv, image, timeouts.bind)
                .await?;
            if now != *digest {
                return Err(exit::refused(format!(
                    "pvc/{claim} changed since its copy to {copy_to} was verified (its listing's sha256 is {now}, not {digest}): nothing was deleted; copy it again, then clean up"
                )));
            }
        }
        Action::PreBind {
            volume,
            claim,
            adopted_from,
        } => {
            let ns = &cluster.namespace;
            // A claimRef without uid and resourceVersion is a pre-bind: the binder completes it
            // for the claim of that name (KUBERNETES-FACTS: released volumes).
            cluster
                .patch_volume(
                    volume,
                    json!({
                        "metadata": {"annotations": {ADOPTED_FROM: adopted_from}},
                        "spec": {"claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": ns, "name": claim, "uid": null, "resourceVersion": null}}
                    }),
                )
                .await?;
        }
        Action::CreateClaim {
            claim,
            volume,
            storage_class,
            size,
            access_modes,
            volume_mode,
            labels,
            annotations,
        } => {
            let pvc = PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim.clone()),
                    namespace: Some(cluster.namespace.clone()),
                    labels: (!labels.is_empty()).then(|| labels.clone()),
                    annotations: (!annotations.is_empty()).then(|| annotations.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(access_modes.clone()),
                    storage_class_name: Some(storage_class.clone()),
                    volume_mode: Some(volume_mode.clone()),
                    volume_name: Some(volume.clone()),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some([("storage".to_string(), Quantity(size.clone()))].into()),
                        ..VolumeResourceRequirements::default()
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                ..PersistentVolumeClaim::default()
            };
            cluster.create_claim(&pvc).await?;
        }
        Action::Scale { owner, to, .. } => {
            upgrade_shared::scale::set_replicas(cluster, owner, *to).await?;
        }
        Action::WaitUnmounted { claim } => {
            wait(
                timeouts.bind,
                &format!("the pods that mount pvc/{claim} to stop"),
                || async { Ok(cluster.pods_using(claim).await?.is_empty()) },
            )
            .await?;
        }
        Action::WaitBound { claim, volume } => {
            wait(
                timeouts.bind,
                &format!("pvc/{claim} to be Bound to pv/{volume}"),
                || async {
                    let c = cluster.claim(claim).await?;
                    Ok(c.is_some_and(|c| {
                        c.status.and_then(|s| s.phase).as_deref() == Some("Bound")
                            && c.spec.and_then(|s| s.volume_name).as_deref()
                                == Some(volume.as_str())
                    }))
                },
            )
            .await?;
        }
    }
    Ok(())
}
