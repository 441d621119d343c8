//! How each component keeps its data: on claims the user made and handed to the chart
//! (`existing-claim`), on claims the chart or a StatefulSet template creates from a storage
//! class (`storage-class`), or on none. Decided per component that holds data, because one
//! claim tells nothing about the others: a user may hand MySQL an existing claim and leave the
//! rest to the chart, and an upgrade that keeps MySQL's data may still drop everything else.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use serde_json::Value;
use upgrade_shared::profile::{self, Mode, Profile};

use crate::context::component_views;
use crate::snapshot::Snapshot;

/// The mode of each data component that has a workload in the snapshot. A KubeFATE-style
/// cluster file names one mode for every component. Empty when no data component was found.
pub fn detect(profile: &Profile, snapshot: &Snapshot) -> BTreeMap<String, Mode> {
    let data: Vec<&str> = if profile.persistence.detect_from.is_empty() {
        profile
            .components
            .iter()
            .filter(|c| c.data)
            .map(|c| c.name.as_str())
            .collect()
    } else {
        profile
            .persistence
            .detect_from
            .iter()
            .map(String::as_str)
            .collect()
    };
    if let Some(mode) = cluster_file_mode(profile, snapshot) {
        return data.into_iter().map(|c| (c.to_string(), mode)).collect();
    }
    let mut modes = BTreeMap::new();
    for name in data {
        let views = component_views(profile, snapshot, &snapshot.namespace, name);
        if views.is_empty() {
            continue;
        }
        // A chart-made claim beside a user's own still goes with the chart: the component is
        // only as safe as its most exposed claim. A claim missing from the input counts as
        // chart-made, the side that loses data.
        let (mut claims, mut chart_made) = (false, false);
        for w in &views {
            let ns = w.namespace.unwrap_or(&snapshot.namespace);
            for claim in w.mounted_claims() {
                claims = true;
                chart_made |= snapshot.claim(ns, &claim).is_none_or(chart_managed);
            }
            if !w.claim_templates.is_empty() {
                claims = true;
                chart_made = true;
            }
        }
        let mode = match (claims, chart_made) {
            (_, true) => Mode::StorageClass,
            (true, false) => Mode::ExistingClaim,
            (false, _) => Mode::None,
        };
        modes.insert(name.to_string(), mode);
    }
    modes
}

/// The mode a cluster file states (`persistence: false`, an `existingClaim`), if one was given.
fn cluster_file_mode(profile: &Profile, snapshot: &Snapshot) -> Option<Mode> {
    let (file, rule) = (
        snapshot.cluster_file.as_ref()?,
        profile.persistence.cluster_file.as_ref()?,
    );
    if profile::field(file, &rule.enabled).and_then(Value::as_bool) == Some(false) {
        return Some(Mode::None);
    }
    let existing = rule.existing_claims.iter().any(|path| {
        profile::field(file, path)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    });
    Some(if existing {
        Mode::ExistingClaim
    } else {
        Mode::StorageClass
    })
}

/// True when a chart (Helm) created the object: it goes away when the chart drops it.
pub fn chart_managed(claim: &PersistentVolumeClaim) -> bool {
    let labels = claim.metadata.labels.as_ref();
    let annotations = claim.metadata.annotations.as_ref();
    labels
        .and_then(|l| l.get("app.kubernetes.io/managed-by"))
        .is_some_and(|v| v == "Helm")
        || labels
            .and_then(|l| l.get("heritage"))
            .is_some_and(|v| v == "Helm")
        || annotations.is_some_and(|a| a.contains_key("meta.helm.sh/release-name"))
}
