//! The baseline: what a namespace held before the upgrade, in one serde document. It is stored
//! as the ConfigMap `kubectl-upgrade-verify` (key `baseline.json`) in the namespace and, with
//! `record --output FILE`, as a file of the same JSON. `verify` compares the cluster against it.
//!
//! What is recorded, and why:
//! - components (with a profile) or workloads (without): images per container and the version
//!   they carry, so `verify` can show old → new and require the target version;
//! - every claim → volume binding by UID (the volume's own UID, not its name), capacity and
//!   reclaim policy: a claim re-created empty keeps its name but not its volume's UID;
//! - per data volume a summary (files, bytes), when a running pod mounts it; with `--deep` a
//!   tree digest instead, taken in a read-only pod of its own (paths, types, owners, modes,
//!   sizes, mtimes, link targets and every regular file's sha256; see [`crate::digest`]), with
//!   that pod's file and byte counts;
//! - row counts per table of the profile's databases, with the version-specific tables marked;
//! - the custom resources' health fields, pod restart counts, and the Jobs that already existed
//!   (only Jobs created after the record count as the upgrade's Jobs).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// `apiVersion` of the document, so a later format can be told apart.
pub const API_VERSION: &str = "verify.kubectl-upgrade.dev/v1";
/// `kind` of the document.
pub const KIND: &str = "Baseline";
/// Name of the ConfigMap that holds the baseline in the namespace.
pub const CONFIG_MAP: &str = "kubectl-upgrade-verify";
/// Key of the baseline in the ConfigMap's data.
pub const CONFIG_MAP_KEY: &str = "baseline.json";
/// A ConfigMap holds at most 1 MiB (the API server refuses larger objects); leave room for
/// the object's own metadata.
pub const CONFIG_MAP_LIMIT: usize = 1_000_000;

/// Everything recorded about a namespace before the upgrade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Baseline {
    pub api_version: String,
    pub kind: String,
    /// The namespace recorded (components of a profile may live in others as well).
    pub namespace: String,
    /// The profile the namespace was recorded with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The application's version read through the profile's version sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When the record was taken (RFC 3339).
    pub recorded_at: String,
    /// The profile's components (empty without a profile).
    #[serde(default)]
    pub components: Vec<ComponentRecord>,
    #[serde(default)]
    pub workloads: Vec<WorkloadRecord>,
    #[serde(default)]
    pub volumes: Vec<VolumeRecord>,
    #[serde(default)]
    pub tables: Vec<TableRecord>,
    #[serde(default)]
    pub custom_resources: Vec<CustomRecord>,
    #[serde(default)]
    pub pods: Vec<PodRecord>,
    /// Jobs that existed at record time (by UID); newer ones are the upgrade's.
    #[serde(default)]
    pub jobs: Vec<ObjectRef>,
    /// The image `record --deep` read the volumes' tree digests with; `verify` uses it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deep_image: Option<String>,
    /// What could not be recorded, and why (a volume no running pod mounts, a database that
    /// did not answer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<String>,
}

/// A component of the profile as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentRecord {
    pub name: String,
    pub namespace: String,
    /// The profile marks it as holding data.
    pub data: bool,
    /// Workloads found by its selector (`deploy/mysql`).
    pub workloads: Vec<String>,
    /// The version its images or labels carried (`1.7.2-release`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Its version was the application's version: after the upgrade it must carry the target.
    pub follows_app: bool,
}

/// A Deployment, StatefulSet or DaemonSet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRecord {
    /// `deploy`, `sts` or `ds`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The profile component it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Image per container of the pod template.
    pub images: BTreeMap<String, String>,
    /// The version labels it carried (`app.kubernetes.io/version`, `helm.sh/chart`, `chart`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub replicas: i32,
    pub ready: i32,
    /// Claims its pods use (mounted by name or from claim templates).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<String>,
}

impl WorkloadRecord {
    /// `deploy/mysql`, the way kubectl names it.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// A claim and the volume bound to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeRecord {
    pub namespace: String,
    pub claim: String,
    pub claim_uid: String,
    /// The volume's name and UID (empty when the claim was not bound).
    pub volume: String,
    pub volume_uid: String,
    /// Capacity as the volume states it (`1Gi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaim_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// The profile component whose workloads use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Counted as data: it must survive the upgrade.
    pub data: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<VolumeSummary>,
}

/// What a data volume held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSummary {
    /// Regular files.
    pub files: u64,
    /// Bytes in regular files (apparent sizes).
    pub bytes: u64,
    /// sha256 of the volume's tree (`--deep`, [`upgrade_shared::tree::digest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The pod the summary was read through.
    pub pod: String,
}

/// Rows of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableRecord {
    pub component: String,
    pub database: String,
    pub table: String,
    pub rows: u64,
    /// The profile marks the table as regenerated by each version: fewer rows are expected.
    #[serde(default)]
    pub version_specific: bool,
}

/// A custom resource's health fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomRecord {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// Dotted field → value, for the fields [`crate::health`] reads.
    pub health: BTreeMap<String, serde_json::Value>,
}

/// A pod's restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRecord {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// Restarts summed over its containers.
    pub restarts: i32,
}

/// An object by namespace, name and UID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// Why a baseline could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The text is not a baseline document.
    #[error("{origin}: not a baseline: {message}")]
    Malformed { origin: String, message: String },
    /// A document of another kind or format version.
    #[error("{origin}: a {kind} of {api_version}, expected a {KIND} of {API_VERSION}")]
    WrongKind {
        origin: String,
        api_version: String,
        kind: String,
    },
}

impl Baseline {
    /// An empty baseline of `namespace`, stamped `recorded_at`.
    pub fn new(namespace: &str, recorded_at: String) -> Self {
        Baseline {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            namespace: namespace.into(),
            profile: None,
            version: None,
            recorded_at,
            components: Vec::new(),
            workloads: Vec::new(),
            volumes: Vec::new(),
            tables: Vec::new(),
            custom_resources: Vec::new(),
            pods: Vec::new(),
            jobs: Vec::new(),
            deep_image: None,
            gaps: Vec::new(),
        }
    }

    /// The JSON text stored in the ConfigMap and the file.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Parses a stored baseline; `origin` names the file or ConfigMap in errors.
    pub fn from_json(origin: &str, text: &str) -> Result<Baseline, BaselineError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| BaselineError::Malformed {
                origin: origin.into(),
                message: e.to_string(),
            })?;
        let field = |k: &str| value.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        if field("apiVersion") != API_VERSION || field("kind") != KIND {
            return Err(BaselineError::WrongKind {
                origin: origin.into(),
                api_version: field("apiVersion").into(),
                kind: field("kind").into(),
            });
        }
        serde_json::from_value(value).map_err(|e| BaselineError::Malformed {
            origin: origin.into(),
            message: e.to_string(),
        })
    }

    /// Reads a baseline file written by `record --output`.
    pub fn read_file(path: &Path) -> anyhow::Result<Baseline> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read baseline {}", path.display()))?;
        Ok(Baseline::from_json(&path.display().to_string(), &text)?)
    }

    /// The volume recorded for a claim.
    pub fn volume(&self, namespace: &str, claim: &str) -> Option<&VolumeRecord> {
        self.volumes
            .iter()
            .find(|v| v.namespace == namespace && v.claim == claim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_baseline_survives_its_own_json() {
        let mut b = Baseline::new("fate-9999", "2026-01-01T00:00:00Z".into());
        b.tables.push(TableRecord {
            component: "mysql".into(),
            database: "eggroll_meta".into(),
            table: "t_job".into(),
            rows: 12,
            version_specific: false,
        });
        let back = Baseline::from_json("x", &b.to_json()).expect("parses");
        assert_eq!(back, b);
    }

    #[test]
    fn other_documents_are_refused_by_name() {
        let err = Baseline::from_json("cm", r#"{"apiVersion":"v1","kind":"ConfigMap"}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "cm: a ConfigMap of v1, expected a Baseline of verify.kubectl-upgrade.dev/v1"
        );
        let err = Baseline::from_json("f", "{").unwrap_err().to_string();
        assert!(err.starts_with("f: not a baseline: "), "{err}");
    }
}
