//! The record, as pure code: the namespace's state (and the profile, if any) in, a baseline
//! out. Row counts and volume summaries are read through pods and added by the command.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use upgrade_shared::profile::{self, Component, Profile};
use upgrade_shared::version::{self, Version};

use crate::baseline::{
    Baseline, ComponentRecord, CustomRecord, ObjectRef, PodRecord, VolumeRecord, WorkloadRecord,
};
use crate::health;
use crate::state::{State, VersionView, WorkloadView};

/// Labels that carry versions, kept with each workload.
pub const VERSION_LABELS: &[&str] = &["app.kubernetes.io/version", "helm.sh/chart", "chart"];

/// The recommended label a plain namespace's version is read from.
pub const VERSION_LABEL: &str = "app.kubernetes.io/version";

/// The application's version through the profile's sources, if one is found.
pub fn app_version(profile: &Profile, state: &State) -> Option<Version> {
    profile::detect_version(profile, &VersionView { profile, state }).ok()
}

/// The version a set of images and labels carries: the first image tag that reads as a
/// version, else the `app.kubernetes.io/version` label.
pub fn carried_version<'a>(
    images: impl IntoIterator<Item = &'a str>,
    labels: impl IntoIterator<Item = &'a BTreeMap<String, String>>,
) -> Option<String> {
    images
        .into_iter()
        .find_map(|i| version::tag_version(version::split_image(i).1))
        .map(|v| v.raw)
        .or_else(|| {
            labels
                .into_iter()
                .find_map(|l| l.get(VERSION_LABEL).cloned())
        })
}

fn pod_images(pods: &[&Pod]) -> Vec<String> {
    pods.iter()
        .flat_map(|p| p.spec.iter().flat_map(|s| s.containers.iter()))
        .filter_map(|c| c.image.clone())
        .collect()
}

/// The version a component carries now: its workloads' images and labels, else its pods'.
pub fn component_version(state: &State, component: &Component) -> Option<String> {
    let workloads = state.component_workloads(component);
    let images: Vec<String> = workloads
        .iter()
        .flat_map(|w| w.images().into_values())
        .collect();
    let labels: Vec<&BTreeMap<String, String>> =
        workloads.iter().filter_map(|w| w.labels).collect();
    carried_version(images.iter().map(String::as_str), labels).or_else(|| {
        let pods = state.component_pods(component);
        let images = pod_images(&pods);
        let labels: Vec<&BTreeMap<String, String>> = pods
            .iter()
            .filter_map(|p| p.metadata.labels.as_ref())
            .collect();
        carried_version(images.iter().map(String::as_str), labels)
    })
}

/// True when two versions name the same numbers (`1.7.2-release` and `v1.7.2`).
pub fn same_numbers(a: &str, b: &Version) -> bool {
    Version::parse(a).is_ok_and(|a| a.cmp_numbers(b).is_eq())
}

fn workload_record(w: &WorkloadView<'_>, component: Option<&Component>) -> WorkloadRecord {
    WorkloadRecord {
        kind: w.kind.into(),
        namespace: w.namespace.into(),
        name: w.name.into(),
        uid: w.uid.into(),
        component: component.map(|c| c.name.clone()),
        images: w.images(),
        labels: w
            .labels
            .map(|l| {
                l.iter()
                    .filter(|(k, _)| VERSION_LABELS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        replicas: w.rollout.desired,
        ready: w.rollout.ready,
        claims: w.claims(),
    }
}

/// Restarts summed over a pod's containers.
pub fn restarts(pod: &Pod) -> i32 {
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .map(|c| c.restart_count)
        .sum()
}

/// Builds the baseline of `state`.
pub fn baseline(state: &State, profile: Option<&Profile>, recorded_at: String) -> Baseline {
    let mut b = Baseline::new(&state.namespace, recorded_at);
    let app = profile.and_then(|p| app_version(p, state));
    b.profile = profile.map(|p| p.name.clone());
    b.version = app.as_ref().map(|v| v.raw.clone());
    let workloads = state.workloads();
    if let Some(profile) = profile {
        for c in &profile.components {
            let version = component_version(state, c);
            b.components.push(ComponentRecord {
                name: c.name.clone(),
                namespace: state.namespace_of(c),
                data: c.data,
                workloads: state
                    .component_workloads(c)
                    .iter()
                    .map(WorkloadView::reference)
                    .collect(),
                follows_app: match (&version, &app) {
                    (Some(v), Some(app)) => same_numbers(v, app),
                    _ => false,
                },
                version,
            });
        }
    }
    for w in &workloads {
        let component = profile.and_then(|p| state.component_of(p, w));
        b.workloads.push(workload_record(w, component));
    }
    // Claims of a component marked as holding no data are the only ones not counted as data.
    let used_by = |ns: &str, claim: &str| -> Option<&Component> {
        let profile = profile?;
        profile.components.iter().find(|c| {
            state.namespace_of(c) == ns
                && (state
                    .component_workloads(c)
                    .iter()
                    .any(|w| w.claims().iter().any(|x| x == claim))
                    || state.component_pods(c).iter().any(|p| {
                        p.spec
                            .iter()
                            .flat_map(|s| s.volumes.iter().flatten())
                            .any(|v| {
                                v.persistent_volume_claim
                                    .as_ref()
                                    .is_some_and(|c| c.claim_name == claim)
                            })
                    }))
        })
    };
    for claim in &state.claims {
        let ns = claim.metadata.namespace.clone().unwrap_or_default();
        let name = claim.metadata.name.clone().unwrap_or_default();
        let volume = state.volume_of(claim);
        let vspec = volume.and_then(|v| v.spec.as_ref());
        let component = used_by(&ns, &name);
        b.volumes.push(VolumeRecord {
            namespace: ns.clone(),
            claim: name.clone(),
            claim_uid: claim.metadata.uid.clone().unwrap_or_default(),
            volume: volume
                .and_then(|v| v.metadata.name.clone())
                .unwrap_or_default(),
            volume_uid: volume
                .and_then(|v| v.metadata.uid.clone())
                .unwrap_or_default(),
            capacity: vspec
                .and_then(|s| s.capacity.as_ref())
                .and_then(|c| c.get("storage"))
                .map(|q| q.0.clone()),
            reclaim_policy: vspec.and_then(|s| s.persistent_volume_reclaim_policy.clone()),
            storage_class: vspec.and_then(|s| s.storage_class_name.clone()),
            component: component.map(|c| c.name.clone()),
            data: component.is_none_or(|c| c.data),
            summary: None,
        });
    }
    for object in &state.custom {
        let meta = |k: &str| {
            object["metadata"][k]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        b.custom_resources.push(CustomRecord {
            api_version: object["apiVersion"].as_str().unwrap_or_default().into(),
            kind: object["kind"].as_str().unwrap_or_default().into(),
            namespace: meta("namespace"),
            name: meta("name"),
            uid: meta("uid"),
            health: health::record(object),
        });
    }
    for pod in &state.pods {
        b.pods.push(PodRecord {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            restarts: restarts(pod),
        });
    }
    for job in &state.jobs {
        b.jobs.push(ObjectRef {
            namespace: job.metadata.namespace.clone().unwrap_or_default(),
            name: job.metadata.name.clone().unwrap_or_default(),
            uid: job.metadata.uid.clone().unwrap_or_default(),
        });
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrikto_release_tags_carry_their_version() {
        // Rok's images are tagged `release-<line>-l0-release-<version>` (Rok's upgrade guide).
        let none = BTreeMap::new();
        assert_eq!(
            carried_version(
                ["gcr.io/arrikto/rok-tools:release-2.0-l0-release-2.0.1"],
                [&none]
            )
            .as_deref(),
            Some("2.0.1")
        );
        assert_eq!(
            carried_version(["mysql:8.0.28"], [&none]).as_deref(),
            Some("8.0.28")
        );
    }
}
