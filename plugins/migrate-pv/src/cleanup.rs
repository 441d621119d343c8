//! `cleanup CLAIM`: delete a claim and its volume once a verified copy of them lives on — and
//! only while that stays true. Refused (exit 1, nothing changed) unless the journal holds a
//! verified copy with its proof, the destination claim and volume still exist with the UIDs the
//! copy recorded (Bound, not being deleted), the source is still the claim that was copied, and
//! no pod mounts it. The first step lists the source again and compares the listing's digest
//! with the verified one, so anything written since the copy stops the cleanup.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use upgrade_shared::cluster::Cluster;

use crate::journal::Entry;
use crate::plan::{Action, Plan, PlanError, policy};
pub use upgrade_shared::pv_journal::{VerifiedCopy, dest_problem, verified_copy};

/// Everything `cleanup` decides on, read from the cluster.
#[derive(Debug, Clone, Default)]
pub struct CleanupState {
    pub namespace: String,
    pub claim: String,
    pub copy: Option<VerifiedCopy>,
    pub source: Option<PersistentVolumeClaim>,
    pub source_volume: Option<PersistentVolume>,
    pub dest: Option<PersistentVolumeClaim>,
    pub dest_volume: Option<PersistentVolume>,
    /// Pods that mount the claim and have not finished (terminating ones too).
    pub users: Vec<String>,
    /// Image of the pod that lists the source again.
    pub image: String,
}

fn refuse(text: String) -> PlanError {
    PlanError::Refused(text)
}

/// Plans the cleanup, or refuses.
pub fn plan(state: &CleanupState) -> Result<Plan, PlanError> {
    let (ns, claim) = (&state.namespace, &state.claim);
    let Some(copy) = &state.copy else {
        return Err(refuse(format!(
            "no verified copy of pvc/{claim} is recorded in namespace {ns}: copy it first (kubectl upgrade-migrate-pv copy {claim} DEST -n {ns}); cleanup deletes data only once it lives on elsewhere"
        )));
    };
    let again = format!(
        "copy it again (kubectl upgrade-migrate-pv copy {claim} {} -n {ns}{}), then clean up",
        copy.dest,
        if copy.dest_namespace == *ns {
            String::new()
        } else {
            format!(" --to-namespace {}", copy.dest_namespace)
        }
    );
    let Some(proof) = &copy.proof else {
        return Err(refuse(format!(
            "the verified copy of pvc/{claim} to pvc/{} carries no record of the objects it went between: {again}",
            copy.dest
        )));
    };
    if let Some(problem) = dest_problem(
        proof,
        &copy.dest,
        &copy.dest_namespace,
        state.dest.as_ref(),
        state.dest_volume.as_ref(),
    ) {
        return Err(refuse(format!("{problem}: {again}")));
    }
    let mut plan = Plan {
        command: format!("cleanup {claim}"),
        namespace: ns.clone(),
        ..Plan::default()
    };
    plan.done.push(format!(
        "pvc/{claim} was copied to pvc/{} in namespace {} and verified; that copy is still there",
        copy.dest, copy.dest_namespace
    ));
    if let Some(source) = &state.source {
        let uid = source.metadata.uid.clone().unwrap_or_default();
        if uid != proof.source_claim_uid {
            return Err(refuse(format!(
                "pvc/{claim} was created again since its verified copy (uid {uid} is not {}): it is not the claim that was copied; {again}",
                proof.source_claim_uid
            )));
        }
        if !state.users.is_empty() {
            return Err(PlanError::InUse {
                claim: claim.clone(),
                pods: state
                    .users
                    .iter()
                    .map(|p| format!("pod/{p}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let volume = match &state.source_volume {
        Some(v) if v.metadata.uid.as_deref() == Some(proof.source_volume_uid.as_str()) => Some(v),
        Some(_) => {
            return Err(refuse(format!(
                "pv/{} was created again since the verified copy of pvc/{claim}: it is not the volume that was copied",
                proof.source_volume
            )));
        }
        None => None,
    };
    let volume_policy = volume.map(policy).unwrap_or_else(|| "Delete".into());
    match &state.source {
        Some(source) => {
            plan.steps.push(Action::CheckUnchanged {
                claim: claim.clone(),
                volume: proof.source_volume.clone(),
                copy_to: format!("pvc/{} in namespace {}", copy.dest, copy.dest_namespace),
                digest: proof.manifest_sha256.clone(),
                image: state.image.clone(),
            });
            plan.steps.push(Action::DeleteClaim {
                claim: claim.clone(),
                volume: proof.source_volume.clone(),
                volume_policy: volume_policy.clone(),
                uid: source.metadata.uid.clone(),
            });
        }
        None => plan.done.push(format!("pvc/{claim} is deleted")),
    }
    match volume {
        Some(_) => plan.steps.push(Action::DeleteVolume {
            volume: proof.source_volume.clone(),
            policy: volume_policy,
            uid: Some(proof.source_volume_uid.clone()),
        }),
        None => plan
            .done
            .push(format!("pv/{} is deleted", proof.source_volume)),
    }
    Ok(plan)
}

/// Reads what `cleanup` decides on.
pub async fn state(
    cluster: &Cluster,
    claim: &str,
    copy: Option<VerifiedCopy>,
    image: &str,
) -> anyhow::Result<CleanupState> {
    let source = cluster.claim(claim).await?;
    let source_volume = match (&source, copy.as_ref().and_then(|c| c.proof.as_ref())) {
        (Some(c), _) => cluster.volume_of(c).await?,
        (None, Some(p)) => cluster.volume(&p.source_volume).await?,
        (None, None) => None,
    };
    let (dest, dest_volume) = match &copy {
        Some(c) => {
            let dest_cluster = cluster.in_namespace(&c.dest_namespace);
            let d = dest_cluster.claim(&c.dest).await?;
            let v = match &d {
                Some(d) => dest_cluster.volume_of(d).await?,
                None => None,
            };
            (d, v)
        }
        None => (None, None),
    };
    let users = if source.is_some() {
        cluster.pods_using(claim).await?
    } else {
        Vec::new()
    };
    Ok(CleanupState {
        namespace: cluster.namespace.clone(),
        claim: claim.into(),
        copy,
        source,
        source_volume,
        dest,
        dest_volume,
        users,
        image: image.into(),
    })
}

/// Why each verified copy in the journal no longer holds, by journal key: its destination is
/// gone, re-created, unbound or being deleted, or no proof was recorded.
pub async fn stale_copies(
    cluster: &Cluster,
    entries: &std::collections::BTreeMap<String, Entry>,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for (key, entry) in entries {
        let Entry::Copy {
            dest,
            dest_namespace,
            state,
            proof,
            ..
        } = entry
        else {
            continue;
        };
        if state != "verified" {
            continue;
        }
        let Some(proof) = proof else {
            out.insert(
                key.clone(),
                "recorded without the objects it went between".into(),
            );
            continue;
        };
        let dest_cluster =
            cluster.in_namespace(dest_namespace.as_deref().unwrap_or(&cluster.namespace));
        let claim = dest_cluster.claim(dest).await?;
        let volume = match &claim {
            Some(c) => dest_cluster.volume_of(c).await?,
            None => None,
        };
        if let Some(problem) = dest_problem(
            proof,
            dest,
            &dest_cluster.namespace,
            claim.as_ref(),
            volume.as_ref(),
        ) {
            out.insert(key.clone(), problem);
        }
    }
    Ok(out)
}
