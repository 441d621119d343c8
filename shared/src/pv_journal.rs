//! migrate-pv's journal: the entries `kubectl upgrade-migrate-pv` records in its ConfigMap
//! (through [`crate::journal`]) before it takes an operation's steps, and what a verified copy
//! proves. migrate-pv writes them to resume, show and undo its work; `kubectl upgrade-verify`
//! reads them to count a volume whose data was copied, verifiably, into a claim the new version
//! uses. Either judges a copy by the same test, [`dest_problem`], against the cluster as it is
//! now: a journal alone is never trusted.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};

use crate::journal::Journal;

/// Name of the journal ConfigMap.
pub const NAME: &str = "kubectl-upgrade-migrate-pv";

/// migrate-pv's journal.
pub const JOURNAL: Journal<Entry> = Journal::new(NAME);

/// The state of a copy whose every entry (and, when asked, every checksum) compared equal.
pub const VERIFIED: &str = "verified";

/// One journal entry.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Entry {
    /// An adoption of a volume under a new claim.
    Adopt {
        record: AdoptRecord,
        /// `started`, `done` or `rolled-back`.
        state: String,
        /// Owners `adopt --quiesce` scaled to zero (`kind/name` → replicas before); a rollback
        /// scales them back once the old claim is back.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        quiesced: BTreeMap<String, i32>,
    },
    /// A copy between claims; owners scaled down for it, to scale back.
    Copy {
        source: String,
        dest: String,
        /// Namespace of DEST when it is not the journal's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dest_namespace: Option<String>,
        /// `kind/name` → replicas before quiescing.
        quiesced: BTreeMap<String, i32>,
        /// `started`, `verified` ([`VERIFIED`]) or `differs`.
        state: String,
        /// What a verified copy proved, to check live before anything is deleted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof: Option<CopyProof>,
    },
}

/// The recorded facts of an adoption, kept in the journal so a resumed run or a rollback knows
/// the volume and the old claim after the old claim is gone.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct AdoptRecord {
    pub old_claim: String,
    pub new_claim: String,
    pub volume: String,
    pub storage_class: String,
    pub size: String,
    pub access_modes: Vec<String>,
    pub volume_mode: String,
    pub original_policy: String,
    /// Labels of the old claim, put back by a rollback.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub old_labels: BTreeMap<String, String>,
    /// Annotations of the old claim (without those the binder and provisioner set), put back
    /// by a rollback.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub old_annotations: BTreeMap<String, String>,
}

/// The objects a verified copy went between, by UID, and a digest of the source's listing, so
/// that `cleanup` deletes the source only while the copy still exists and the source still
/// holds exactly what was verified.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct CopyProof {
    pub source_claim_uid: String,
    pub source_volume: String,
    pub source_volume_uid: String,
    pub dest_claim_uid: String,
    pub dest_volume: String,
    pub dest_volume_uid: String,
    /// sha256 of the source's manifest listing ([`crate::tree::manifest_command`]) taken right
    /// after the verification.
    pub manifest_sha256: String,
    /// When the copy was verified (RFC 3339, whole seconds, UTC; [`now`]), before the source's
    /// owners were scaled back: what was written to the source after it is not in the copy.
    /// Entries written before this field existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<String>,
}

/// Now, as [`CopyProof::verified_at`] records it (RFC 3339, whole seconds, UTC).
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Whether a copy verified at `verified_at` is newer than `recorded_at` (both RFC 3339). Both
/// are cut to whole seconds, so one in the same second is not newer; `None` when either does
/// not parse.
pub fn verified_after(verified_at: &str, recorded_at: &str) -> Option<bool> {
    let parse = |t: &str| t.parse::<k8s_openapi::jiff::Timestamp>().ok();
    Some(parse(verified_at)?.as_second() > parse(recorded_at)?.as_second())
}

/// Key of an adoption entry.
pub fn adopt_key(new_claim: &str) -> String {
    format!("adopt.{new_claim}")
}

/// Key of a copy entry.
pub fn copy_key(dest: &str) -> String {
    format!("copy.{dest}")
}

/// A verified copy of a claim, as the journal records it.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCopy {
    pub dest: String,
    pub dest_namespace: String,
    pub proof: Option<CopyProof>,
}

/// The verified copy of `claim` recorded in the journal of `namespace`, if any.
pub fn verified_copy(
    namespace: &str,
    claim: &str,
    entries: &BTreeMap<String, Entry>,
) -> Option<VerifiedCopy> {
    entries.values().find_map(|e| match e {
        Entry::Copy {
            source,
            dest,
            dest_namespace,
            state,
            proof,
            ..
        } if source == claim && state == VERIFIED => Some(VerifiedCopy {
            dest: dest.clone(),
            dest_namespace: dest_namespace.clone().unwrap_or_else(|| namespace.into()),
            proof: proof.clone(),
        }),
        _ => None,
    })
}

fn uid(meta: &kube::api::ObjectMeta) -> String {
    meta.uid.clone().unwrap_or_default()
}

/// Why the copy a proof describes cannot be trusted any more, judged from the destination as
/// the cluster holds it now; `None` while it stands: the claim exists with the recorded UID,
/// is not being deleted and is Bound to the recorded volume, which exists with its recorded
/// UID and is not being deleted either.
pub fn dest_problem(
    proof: &CopyProof,
    dest: &str,
    dest_namespace: &str,
    claim: Option<&PersistentVolumeClaim>,
    volume: Option<&PersistentVolume>,
) -> Option<String> {
    let Some(claim) = claim else {
        return Some(format!(
            "pvc/{dest} in namespace {dest_namespace}, which holds the verified copy, no longer exists"
        ));
    };
    if uid(&claim.metadata) != proof.dest_claim_uid {
        return Some(format!(
            "pvc/{dest} in namespace {dest_namespace} was deleted and created again since the verified copy (uid {} is not {})",
            uid(&claim.metadata),
            proof.dest_claim_uid
        ));
    }
    if claim.metadata.deletion_timestamp.is_some() {
        return Some(format!(
            "pvc/{dest} in namespace {dest_namespace}, which holds the verified copy, is being deleted"
        ));
    }
    let phase = claim
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Pending".into());
    let bound_to = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .unwrap_or_default();
    if phase != "Bound" || bound_to != proof.dest_volume {
        return Some(format!(
            "pvc/{dest} in namespace {dest_namespace} is {phase} on {:?}, not Bound to pv/{} that holds the verified copy",
            bound_to, proof.dest_volume
        ));
    }
    match volume {
        None => Some(format!(
            "pv/{}, which holds the verified copy, no longer exists",
            proof.dest_volume
        )),
        Some(v) if uid(&v.metadata) != proof.dest_volume_uid => Some(format!(
            "pv/{} was deleted and created again since the verified copy",
            proof.dest_volume
        )),
        Some(v) if v.metadata.deletion_timestamp.is_some() => Some(format!(
            "pv/{}, which holds the verified copy, is being deleted",
            proof.dest_volume
        )),
        Some(_) => None,
    }
}
