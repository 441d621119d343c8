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
