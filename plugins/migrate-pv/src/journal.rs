//! The journal's entries: what migrate-pv records in its ConfigMap (the shared
//! [`upgrade_shared::journal`]) before it takes an operation's steps, so that an interrupted
//! run can be resumed, shown by `status` and undone by `rollback` even after the objects it
//! started from are gone.

use std::collections::BTreeMap;

use upgrade_shared::journal::Journal;

use crate::plan::AdoptRecord;

/// Name of the journal ConfigMap.
pub const NAME: &str = "kubectl-upgrade-migrate-pv";

/// The journal of this plugin.
pub const JOURNAL: Journal<Entry> = Journal::new(NAME);

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
        /// `started`, `verified` or `differs`.
        state: String,
        /// What a verified copy proved, to check live before anything is deleted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof: Option<CopyProof>,
    },
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
    /// sha256 of the source's manifest listing ([`crate::tree::manifest_command`]) taken
    /// right after the verification.
    pub manifest_sha256: String,
}

/// Key of an adoption entry.
pub fn adopt_key(new_claim: &str) -> String {
    format!("adopt.{new_claim}")
}

/// Key of a copy entry.
pub fn copy_key(dest: &str) -> String {
    format!("copy.{dest}")
}
