//! One module per subcommand: each reads what it needs, builds its plan with the pure code,
//! renders it, asks, and hands it to its executor.

pub mod pods;
pub mod quiesce;
pub mod resume;

use serde::{Deserialize, Serialize};
use upgrade_shared::cluster::Cluster;
use upgrade_shared::journal::Journal;

use crate::plan::{QuiesceRecord, Rollout};

/// One journal entry: the last rollout (`rollout`) and the last quiesce (`quiesce`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Entry {
    Rollout(Rollout),
    Quiesce(QuiesceRecord),
}

/// The journal ConfigMap of this plugin.
pub const JOURNAL: Journal<Entry> = Journal::new(crate::JOURNAL);

/// Key of the rollout entry.
pub const ROLLOUT: &str = "rollout";
/// Key of the quiesce entry.
pub const QUIESCE: &str = "quiesce";

/// Connects as kubectl would, through the shared client: the default connect and request
/// limits hold, and the client's own retry of 429 answers is off (an eviction a disruption
/// budget refuses comes back as 429, and the rollout waits on it itself, saying why); other
/// retryable answers go through `cluster::retry`.
pub async fn connect(args: &crate::Args) -> anyhow::Result<Cluster> {
    let (client, namespace) = args.kube.client().await?;
    Ok(Cluster { client, namespace })
}
