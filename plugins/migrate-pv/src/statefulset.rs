//! Checks that a StatefulSet will take an adopted claim as its own: the claim's name follows
//! `<template>-<statefulset>-<ordinal>` and the template's class, access modes and size suit
//! the volume. Pure code.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolume;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Problems that stop the adoption, and warnings that do not.
#[derive(Debug, Default, PartialEq)]
pub struct Fit {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// The bytes a claim or volume size names (see [`upgrade_shared::quantity::bytes`]).
pub fn bytes(q: &Quantity) -> Option<u128> {
    upgrade_shared::quantity::bytes(&q.0)
}

/// True when `claim` is the name the StatefulSet `sts` gives its template `template`'s claim
/// of some ordinal: `<template>-<sts>-<ordinal>`.
fn made_by(sts: &str, template: &str, claim: &str) -> bool {
    claim
        .strip_prefix(&format!("{template}-{sts}-"))
        .is_some_and(|ordinal| !ordinal.is_empty() && ordinal.bytes().all(|b| b.is_ascii_digit()))
}

/// True when one of the StatefulSet's volumeClaimTemplates makes a claim of this name.
pub fn owns(sts: &StatefulSet, claim: &str) -> bool {
    let name = sts.metadata.name.clone().unwrap_or_default();
    sts.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_ref())
        .is_some_and(|ts| {
            ts.iter()
                .any(|t| made_by(&name, t.metadata.name.as_deref().unwrap_or_default(), claim))
        })
}

/// Checks the claim name and the template that would have made it against the volume.
pub fn check(sts: &StatefulSet, claim: &str, volume: &PersistentVolume) -> Fit {
    let mut fit = Fit::default();
    let name = sts.metadata.name.clone().unwrap_or_default();
    let spec = sts.spec.clone().unwrap_or_default();
    let templates = spec.volume_claim_templates.clone().unwrap_or_default();
    let template = templates
        .iter()
        .find(|t| made_by(&name, &t.metadata.name.clone().unwrap_or_default(), claim));
    let Some(template) = template else {
        let expected: Vec<String> = templates
            .iter()
            .map(|t| format!("{}-{name}-0", t.metadata.name.clone().unwrap_or_default()))
            .collect();
        fit.errors.push(format!(
            "pvc/{claim} is not a claim of sts/{name}: its claims are named <template>-{name}-<ordinal> ({})",
            if expected.is_empty() { "it has no volumeClaimTemplates".to_string() } else { expected.join(", ") }
        ));
        return fit;
    };
    let tspec = template.spec.clone().unwrap_or_default();
    let vspec = volume.spec.clone().unwrap_or_default();
    let vname = volume.metadata.name.clone().unwrap_or_default();
    let vclass = vspec.storage_class_name.clone().unwrap_or_default();
    if let Some(tclass) = &tspec.storage_class_name
        && *tclass != vclass
    {
        fit.warnings.push(format!(
            "the template asks for class {tclass:?} but pv/{vname} is {vclass:?}: the adopted claim uses {vclass:?}; new replicas get {tclass:?}"
        ));
    }
    let vmodes = vspec.access_modes.clone().unwrap_or_default();
    for mode in tspec.access_modes.clone().unwrap_or_default() {
        if !vmodes.contains(&mode) {
            fit.errors.push(format!(
                "the template asks for access mode {mode} that pv/{vname} does not offer ({})",
                vmodes.join(",")
            ));
        }
    }
    let want = tspec
        .resources
        .and_then(|r| r.requests)
        .and_then(|r| r.get("storage").and_then(bytes));
    let have = vspec
        .capacity
        .as_ref()
        .and_then(|c| c.get("storage"))
        .and_then(bytes);
    if let (Some(want), Some(have)) = (want, have)
        && want > have
    {
        fit.warnings.push(format!(
            "the template asks for {} but pv/{vname} holds {}: the claim keeps the volume's size",
            upgrade_shared::quantity::human(want),
            upgrade_shared::quantity::human(have)
        ));
    }
    let tmode = tspec.volume_mode.unwrap_or_else(|| "Filesystem".into());
    let vmode = vspec.volume_mode.unwrap_or_else(|| "Filesystem".into());
    if tmode != vmode {
        fit.errors.push(format!(
            "the template's volumeMode {tmode} differs from pv/{vname}'s {vmode}"
        ));
    }
    if let Some(policy) = spec.persistent_volume_claim_retention_policy {
        for (when, value) in [
            ("whenDeleted", policy.when_deleted),
            ("whenScaled", policy.when_scaled),
        ] {
            if value.as_deref() == Some("Delete") {
                fit.warnings.push(format!(
                    "sts/{name} has persistentVolumeClaimRetentionPolicy.{when}: Delete — its claims are deleted with it; keep pv/{vname} Retain"
                ));
            }
        }
    }
    fit
}
