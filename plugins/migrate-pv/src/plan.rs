//! Plans, computed from what the cluster holds now (and the journal), never from what a
//! previous run meant to do: running a command again after an interruption plans only the
//! steps that are left. Pure code; the executor carries the steps out.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use serde::Serialize;

/// Annotation on a volume holding its reclaim policy from before the suite changed it.
pub const ORIGINAL_POLICY: &str = "upgrade.kubectl-upgrade.dev/original-reclaim-policy";
/// Annotation on a volume naming the claim it was adopted from (`namespace/name`).
pub const ADOPTED_FROM: &str = "upgrade.kubectl-upgrade.dev/adopted-from";

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Set a volume's reclaim policy; `record` keeps the old one in [`ORIGINAL_POLICY`].
    SetPolicy {
        volume: String,
        from: String,
        to: String,
        record: bool,
    },
    /// Delete a claim (only while no pod mounts it, re-checked right before; with `uid`, only
    /// that very object). What happens to its volume follows `volume_policy`.
    DeleteClaim {
        claim: String,
        volume: String,
        volume_policy: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        uid: Option<String>,
    },
    /// List a claim again and refuse unless the listing's sha256 is `digest`, the one taken
    /// when its copy to `copy_to` was verified.
    CheckUnchanged {
        claim: String,
        volume: String,
        copy_to: String,
        digest: String,
        image: String,
    },
    /// Point the volume's claimRef at a claim that does not exist yet (no uid): a pre-bind.
    /// `adopted_from` (`namespace/claim`) is recorded on the volume in [`ADOPTED_FROM`]; `None`
    /// removes that annotation (a rollback).
    PreBind {
        volume: String,
        claim: String,
        adopted_from: Option<String>,
    },
    /// Create a claim that names the volume, with these labels and annotations.
    CreateClaim {
        claim: String,
        volume: String,
        storage_class: String,
        size: String,
        access_modes: Vec<String>,
        volume_mode: String,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        labels: BTreeMap<String, String>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        annotations: BTreeMap<String, String>,
    },
    /// Scale a workload (`deployment/NAME`, `statefulset/NAME`) through its scale subresource.
    Scale { owner: String, from: i32, to: i32 },
    /// Wait until no pod mounts the claim (terminating pods hold it too).
    WaitUnmounted { claim: String },
    /// Wait until the claim is Bound to the volume.
    WaitBound { claim: String, volume: String },
    /// Delete a volume object whose data was copied elsewhere and verified; `policy` says
    /// whether the storage and its data go with it (`Delete`) or stay behind (`Retain`).
    DeleteVolume {
        volume: String,
        policy: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        uid: Option<String>,
    },
}

impl Action {
    /// True for steps that cannot be taken back by simply running the command again.
    pub fn destructive(&self) -> bool {
        matches!(
            self,
            Action::DeleteClaim { .. } | Action::DeleteVolume { .. }
        ) || matches!(self, Action::SetPolicy { to, .. } if to == "Delete")
    }

    /// One line for the plan table.
    pub fn describe(&self) -> String {
        match self {
            Action::SetPolicy {
                volume,
                from,
                to,
                record,
            } => format!(
                "set pv/{volume} reclaim policy {from} → {to}{}",
                if *record {
                    " (original recorded on the volume)"
                } else {
                    ""
                }
            ),
            Action::DeleteClaim {
                claim,
                volume,
                volume_policy,
                ..
            } => {
                if volume_policy == "Retain" {
                    format!("delete pvc/{claim} (pv/{volume} and its data are kept: Retain)")
                } else {
                    format!(
                        "delete pvc/{claim} (pv/{volume} has reclaim policy {volume_policy}: the volume and its data are deleted with the claim)"
                    )
                }
            }
            Action::CheckUnchanged {
                claim,
                copy_to,
                digest,
                ..
            } => format!(
                "check that pvc/{claim} still lists exactly as when its copy to {copy_to} was verified (sha256 {})",
                &digest[..digest.len().min(12)]
            ),
            Action::PreBind { volume, claim, .. } => {
                format!("pre-bind pv/{volume} to pvc/{claim} (claimRef without uid)")
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
            } => format!(
                "create pvc/{claim} on pv/{volume} (class {:?}, {size}, {}, {volume_mode}){}",
                storage_class,
                access_modes.join(","),
                if labels.is_empty() && annotations.len() <= 1 {
                    String::new()
                } else {
                    format!(
                        " with its {} labels and {} annotations from before",
                        labels.len(),
                        annotations.len()
                    )
                }
            ),
            Action::WaitBound { claim, volume } => {
                format!("wait until pvc/{claim} is Bound to pv/{volume}")
            }
            Action::Scale { owner, from, to } => format!("scale {owner} from {from} to {to}"),
            Action::WaitUnmounted { claim } => {
                format!("wait until no pod mounts pvc/{claim}")
            }
            Action::DeleteVolume { volume, policy, .. } => {
                if policy == "Retain" {
                    format!(
                        "delete the object pv/{volume}; its data stays on the storage (reclaim policy Retain) until removed there"
                    )
                } else {
                    format!(
                        "delete pv/{volume} and its data on the storage (reclaim policy {policy})"
                    )
                }
            }
        }
    }
}

/// A plan: the steps, and what the user should know before saying yes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub command: String,
    pub namespace: String,
    pub steps: Vec<Action>,
    /// Warnings that do not stop the plan.
    pub warnings: Vec<String>,
    /// Things already as wanted (shown so a resumed run explains itself).
    pub done: Vec<String>,
}

impl Plan {
    pub fn destructive(&self) -> bool {
        self.steps.iter().any(Action::destructive)
    }
}

/// Why a plan cannot be made; nothing has been changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("persistentvolumeclaims {0:?} not found in namespace {1}")]
    ClaimNotFound(String, String),
    #[error("pvc/{0} is {1}, not Bound: there is no volume to act on")]
    NotBound(String, String),
    #[error("persistentvolumes {0:?} not found (named by pvc/{1})")]
    VolumeNotFound(String, String),
    #[error(
        "pvc/{claim} is used by {pods}: stop them first (scale their owner to 0), then run again"
    )]
    InUse { claim: String, pods: String },
    #[error(
        "pvc/{0} already exists and is bound to another volume ({1}); pick another name or delete it"
    )]
    TargetTaken(String, String),
    #[error(
        "pv/{volume} is claimed by {by}, not by pvc/{claim}; it is not this operation's volume"
    )]
    VolumeTaken {
        volume: String,
        claim: String,
        by: String,
    },
    #[error("nothing is recorded about pvc/{0}: it was not adopted by this tool in namespace {1}")]
    NoRecord(String, String),
    #[error("{0}")]
    Refused(String),
}

impl PlanError {
    /// True for a safety rule's refusal (exit 1), false for bad input (exit 2).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            PlanError::InUse { .. }
                | PlanError::TargetTaken(..)
                | PlanError::VolumeTaken { .. }
                | PlanError::Refused(_)
        )
    }
}

pub use upgrade_shared::pv_journal::AdoptRecord;

/// True for annotations the volume binder, the provisioner or the scheduler set on a claim:
/// they describe one binding and must not carry over to a new claim object.
pub fn binding_annotation(key: &str) -> bool {
    key.starts_with("pv.kubernetes.io/")
        || key == "volume.beta.kubernetes.io/storage-provisioner"
        || key == "volume.kubernetes.io/storage-provisioner"
        || key == "volume.kubernetes.io/selected-node"
}

fn phase_of_claim(c: &PersistentVolumeClaim) -> String {
    c.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Pending".into())
}

/// The reclaim policy a volume has now.
pub fn policy(v: &PersistentVolume) -> String {
    v.spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.clone())
        .unwrap_or_else(|| "Delete".into())
}

fn claim_ref(v: &PersistentVolume) -> Option<(String, String, Option<String>)> {
    v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).map(|r| {
        (
            r.namespace.clone().unwrap_or_default(),
            r.name.clone().unwrap_or_default(),
            r.uid.clone(),
        )
    })
}

/// Facts of a claim and its volume, as an adoption records them.
pub fn record_of(
    old: &PersistentVolumeClaim,
    volume: &PersistentVolume,
    new_claim: &str,
) -> AdoptRecord {
    let spec = old.spec.clone().unwrap_or_default();
    let vspec = volume.spec.clone().unwrap_or_default();
    AdoptRecord {
        old_claim: old.metadata.name.clone().unwrap_or_default(),
        new_claim: new_claim.to_string(),
        volume: volume.metadata.name.clone().unwrap_or_default(),
        // The claim must ask for the volume's class exactly ("" included) or it will not bind.
        storage_class: vspec.storage_class_name.clone().unwrap_or_default(),
        size: spec
            .resources
            .and_then(|r| r.requests)
            .and_then(|r| r.get("storage").map(|q| q.0.clone()))
            .or_else(|| {
                vspec
                    .capacity
                    .as_ref()
                    .and_then(|c| c.get("storage"))
                    .map(|q| q.0.clone())
            })
            .unwrap_or_default(),
        access_modes: vspec
            .access_modes
            .clone()
            .unwrap_or_else(|| spec.access_modes.clone().unwrap_or_default()),
        volume_mode: vspec
            .volume_mode
            .clone()
            .unwrap_or_else(|| "Filesystem".into()),
        old_labels: old.metadata.labels.clone().unwrap_or_default(),
        old_annotations: old
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !binding_annotation(k))
            .collect(),
        original_policy: volume
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ORIGINAL_POLICY).cloned())
            .unwrap_or_else(|| policy(volume)),
    }
}

/// What the cluster holds for one adoption (or its rollback).
#[derive(Debug, Clone, Default)]
pub struct AdoptState {
    pub namespace: String,
    pub old: Option<PersistentVolumeClaim>,
    pub new: Option<PersistentVolumeClaim>,
    pub volume: Option<PersistentVolume>,
    /// Pods (running or not yet gone) that mount the claim being given up.
    pub users: Vec<String>,
    pub record: Option<AdoptRecord>,
}

/// Plans handing the volume behind `old` to `new`: Retain, delete old, pre-bind, create new,
/// wait for Bound. Steps already done are skipped.
pub fn adopt(state: &AdoptState, old: &str, new: &str) -> Result<(Plan, AdoptRecord), PlanError> {
    let ns = &state.namespace;
    let mut plan = Plan {
        command: format!("adopt {old} {new}"),
        namespace: ns.clone(),
        ..Plan::default()
    };
    let record = match (&state.old, &state.record) {
        (Some(claim), _) => {
            let phase = phase_of_claim(claim);
            let volume_name = claim.spec.as_ref().and_then(|s| s.volume_name.clone());
            match (phase.as_str(), volume_name) {
                ("Bound", Some(_)) => {}
                (p, _) => return Err(PlanError::NotBound(old.into(), p.into())),
            }
            let volume = state.volume.as_ref().ok_or_else(|| {
                PlanError::VolumeNotFound(
                    claim
                        .spec
                        .as_ref()
                        .and_then(|s| s.volume_name.clone())
                        .unwrap_or_default(),
                    old.into(),
                )
            })?;
            state
                .record
                .clone()
                .unwrap_or_else(|| record_of(claim, volume, new))
        }
        (None, Some(r)) => r.clone(),
        (None, None) => return Err(PlanError::ClaimNotFound(old.into(), ns.clone())),
    };
    let volume = state
        .volume
        .as_ref()
        .ok_or_else(|| PlanError::VolumeNotFound(record.volume.clone(), old.into()))?;
    if let Some(n) = &state.new {
        let bound_to = n
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .unwrap_or_default();
        if !bound_to.is_empty() && bound_to != record.volume {
            return Err(PlanError::TargetTaken(new.into(), bound_to));
        }
    }
    let current_ref = claim_ref(volume);
    if let Some((rns, rname, _)) = &current_ref
        && !(rns == ns && (rname == old || rname == new))
    {
        return Err(PlanError::VolumeTaken {
            volume: record.volume.clone(),
            claim: old.into(),
            by: format!("{rns}/{rname}"),
        });
    }
    if state.old.is_some() && !state.users.is_empty() {
        return Err(PlanError::InUse {
            claim: old.into(),
            pods: state
                .users
                .iter()
                .map(|p| format!("pod/{p}"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let current = policy(volume);
    if current == "Retain" {
        plan.done.push(format!("pv/{} is Retain", record.volume));
    } else {
        plan.steps.push(Action::SetPolicy {
            volume: record.volume.clone(),
            from: current,
            to: "Retain".into(),
            record: true,
        });
    }
    if state.old.is_some() {
        plan.steps.push(Action::DeleteClaim {
            claim: old.into(),
            volume: record.volume.clone(),
            volume_policy: "Retain".into(),
            uid: state.old.as_ref().and_then(|c| c.metadata.uid.clone()),
        });
    } else {
        plan.done.push(format!("pvc/{old} is deleted"));
    }
    let new_bound = state
        .new
        .as_ref()
        .is_some_and(|n| phase_of_claim(n) == "Bound")
        && current_ref
            .as_ref()
            .is_some_and(|(_, name, uid)| name == new && uid.is_some());
    if new_bound {
        plan.done
            .push(format!("pvc/{new} is Bound to pv/{}", record.volume));
        return Ok((plan, record));
    }
    if current_ref.as_ref().is_some_and(|(_, name, _)| name == new) {
        plan.done
            .push(format!("pv/{} is pre-bound to pvc/{new}", record.volume));
    } else {
        plan.steps.push(Action::PreBind {
            volume: record.volume.clone(),
            claim: new.into(),
            adopted_from: Some(format!("{ns}/{old}")),
        });
    }
    if state.new.is_some() {
        plan.done.push(format!("pvc/{new} exists"));
    } else {
        plan.steps.push(create_claim(&record, new));
    }
    plan.steps.push(Action::WaitBound {
        claim: new.into(),
        volume: record.volume.clone(),
    });
    Ok((plan, record))
}

fn create_claim(record: &AdoptRecord, claim: &str) -> Action {
    Action::CreateClaim {
        claim: claim.into(),
        volume: record.volume.clone(),
        storage_class: record.storage_class.clone(),
        size: record.size.clone(),
        access_modes: record.access_modes.clone(),
        volume_mode: record.volume_mode.clone(),
        labels: BTreeMap::new(),
        annotations: [(ADOPTED_FROM.to_string(), format!("pv/{}", record.volume))].into(),
    }
}

/// Plans undoing an adoption: the volume goes back under its old claim.
pub fn rollback_adopt(state: &AdoptState, new: &str) -> Result<Plan, PlanError> {
    let record = state
        .record
        .clone()
        .ok_or_else(|| PlanError::NoRecord(new.into(), state.namespace.clone()))?;
    // Undoing an adoption is an adoption the other way round.
    let reversed = AdoptState {
        namespace: state.namespace.clone(),
        old: state.new.clone(),
        new: state.old.clone(),
        volume: state.volume.clone(),
        users: state.users.clone(),
        record: Some(AdoptRecord {
            old_claim: record.new_claim.clone(),
            new_claim: record.old_claim.clone(),
            ..record.clone()
        }),
    };
    let (mut plan, _) = adopt(&reversed, &record.new_claim, &record.old_claim)?;
    plan.command = format!("rollback {new}");
    // The old claim comes back as it was (Helm's ownership, the application's labels), and the
    // volume no longer says it was adopted.
    for step in &mut plan.steps {
        match step {
            Action::PreBind { adopted_from, .. } => *adopted_from = None,
            Action::CreateClaim {
                labels,
                annotations,
                ..
            } => {
                *labels = record.old_labels.clone();
                *annotations = record.old_annotations.clone();
            }
            _ => {}
        }
    }
    if record.old_labels.is_empty() && record.old_annotations.is_empty() {
        plan.warnings.push(format!(
            "the journal holds no labels or annotations of pvc/{}: it comes back without any",
            record.old_claim
        ));
    }
    Ok(plan)
}

/// The owners a rollback scales back up: those of `quiesced` whose replicas differ from now
/// (`current`) and that no other adoption still holds down. An owner that another pair's
/// `adopt --quiesce` also stopped mounts that pair's old claim too, which is not back until
/// that pair is rolled back: scaled up now, its pods would wait for a claim that does not exist
/// (or, a StatefulSet's, get a new and empty one). Such an owner stays at zero with a warning,
/// and the last rollback of its pairs brings it back.
pub fn rollback_scales(
    namespace: &str,
    quiesced: &upgrade_shared::scale::Replicas,
    current: &BTreeMap<String, Option<i32>>,
    others: &BTreeMap<String, upgrade_shared::pv_journal::Entry>,
) -> (Vec<Action>, Vec<String>) {
    let (mut steps, mut warnings) = (Vec::new(), Vec::new());
    for (owner, replicas) in quiesced {
        let holding: Vec<&AdoptRecord> = others
            .values()
            .filter_map(|e| match e {
                upgrade_shared::pv_journal::Entry::Adopt {
                    record,
                    state,
                    quiesced,
                } if state != "rolled-back" && quiesced.contains_key(owner) => Some(record),
                _ => None,
            })
            .collect();
        if !holding.is_empty() {
            let pairs: Vec<String> = holding
                .iter()
                .map(|r| format!("pvc/{} (adopted by pvc/{})", r.old_claim, r.new_claim))
                .collect();
            let commands: Vec<String> = holding
                .iter()
                .map(|r| {
                    format!(
                        "kubectl upgrade-migrate-pv rollback {} -n {namespace}",
                        r.new_claim
                    )
                })
                .collect();
            warnings.push(format!(
                "{owner} stays at 0 replicas: it also mounts {}, not back yet; `{}` brings it back to {replicas}",
                pairs.join(", "),
                commands.join("` and `")
            ));
            continue;
        }
        if current.get(owner).copied().flatten() != Some(*replicas) {
            steps.push(Action::Scale {
                owner: owner.clone(),
                from: 0,
                to: *replicas,
            });
        }
    }
    (steps, warnings)
}

/// Plans setting Retain on the volumes behind claims; a policy already Retain is left alone.
pub fn retain(
    namespace: &str,
    claims: &[(PersistentVolumeClaim, Option<PersistentVolume>)],
) -> Result<Plan, PlanError> {
    let mut plan = Plan {
        command: "retain".into(),
        namespace: namespace.into(),
        ..Plan::default()
    };
    for (claim, volume) in claims {
        let name = claim.metadata.name.clone().unwrap_or_default();
        let volume = volume.as_ref().ok_or_else(|| missing_volume(claim))?;
        let vname = volume.metadata.name.clone().unwrap_or_default();
        let current = policy(volume);
        if current == "Retain" {
            plan.done.push(format!("pv/{vname} (pvc/{name}) is Retain"));
        } else {
            plan.steps.push(Action::SetPolicy {
                volume: vname,
                from: current,
                to: "Retain".into(),
                record: true,
            });
        }
    }
    Ok(plan)
}

/// Why a claim has no volume to act on: not bound yet (named with its phase), or bound to a
/// volume that no longer exists.
pub(crate) fn missing_volume(claim: &PersistentVolumeClaim) -> PlanError {
    let name = claim.metadata.name.clone().unwrap_or_default();
    match claim.spec.as_ref().and_then(|s| s.volume_name.clone()) {
        Some(v) if phase_of_claim(claim) == "Bound" => PlanError::VolumeNotFound(v, name),
        _ => PlanError::NotBound(name, phase_of_claim(claim)),
    }
}

/// Plans putting back recorded reclaim policies. A volume that is not Bound keeps Retain: with
/// Delete, a Released volume would be deleted at once, and its data with it.
pub fn restore_policy(namespace: &str, volumes: &[PersistentVolume]) -> Plan {
    let mut plan = Plan {
        command: "restore-policy".into(),
        namespace: namespace.into(),
        ..Plan::default()
    };
    for v in volumes {
        let name = v.metadata.name.clone().unwrap_or_default();
        let Some(original) = v
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ORIGINAL_POLICY))
            .cloned()
        else {
            plan.done.push(format!("pv/{name} has no recorded policy"));
            continue;
        };
        let phase = v
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        if original != "Retain" && phase != "Bound" {
            plan.warnings.push(format!("pv/{name} is {phase}: it keeps Retain, because {original} would delete its data now"));
            continue;
        }
        plan.steps.push(Action::SetPolicy {
            volume: name,
            from: policy(v),
            to: original,
            record: false,
        });
    }
    plan
}
