//! The migration pods: what they mount and their names. Where they run, their start and their
//! removal are [`upgrade_shared::volume_pod`]'s.

use k8s_openapi::api::core::v1::Pod;
use upgrade_shared::volume_pod::{self, Mount};

pub use upgrade_shared::volume_pod::{
    VolumePod as Side, placement, remove as remove_pod, start as start_pod,
};

/// The migration pod: SOURCE read-only at /source, DEST at /dest, only the capabilities a
/// faithful copy needs (owners, modes and times of files it does not own).
pub fn migration_pod(
    name: &str,
    namespace: &str,
    image: &str,
    source: Option<&str>,
    dest: Option<&str>,
    affinity: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut mounts = Vec::new();
    if let Some(claim) = source {
        mounts.push(Mount {
            name: "source",
            claim,
            path: "/source",
            read_only: true,
        });
    }
    if let Some(claim) = dest {
        mounts.push(Mount {
            name: "dest",
            claim,
            path: "/dest",
            read_only: false,
        });
    }
    volume_pod::manifest(
        name,
        namespace,
        image,
        "migrate-pv",
        "migrate",
        &mounts,
        &[
            "CHOWN",
            "DAC_OVERRIDE",
            "DAC_READ_SEARCH",
            "FOWNER",
            "FSETID",
            "MKNOD",
        ],
        affinity,
    )
}

/// A pod that only reads SOURCE (at /source, read-only), to measure it: root with only
/// DAC_READ_SEARCH, so it can read every file and change none.
pub fn measure_pod(
    name: &str,
    namespace: &str,
    image: &str,
    source: &str,
    affinity: Option<serde_json::Value>,
) -> serde_json::Value {
    let mounts = [Mount {
        name: "source",
        claim: source,
        path: "/source",
        read_only: true,
    }];
    volume_pod::manifest(
        name,
        namespace,
        image,
        "migrate-pv",
        "migrate",
        &mounts,
        &["DAC_READ_SEARCH"],
        affinity,
    )
}

/// True for a pod this plugin made (its labels); the caller also checks its name and journal.
pub fn is_migration_pod(p: &Pod) -> bool {
    p.metadata.labels.as_ref().is_some_and(|l| {
        l.get("app.kubernetes.io/managed-by").map(String::as_str) == Some("kubectl-upgrade")
            && l.get("app.kubernetes.io/component").map(String::as_str) == Some("migrate-pv")
    })
}

/// Name of the migration pod for a copy (stable, so a re-run finds a leftover one).
pub fn pod_name(dest: &str) -> String {
    volume_pod::name("migrate-pv", dest)
}
