//! The facts a check resolves once — versions, persistence per component, the upgrade edges
//! that apply — and the lookups every rule makes on the snapshot.

use std::collections::BTreeMap;

use serde_json::Value;
use upgrade_shared::profile::{Component, Edge, Mode, Profile};
use upgrade_shared::version::Version;

use crate::snapshot::{Snapshot, WorkloadView};

/// What the user asked for beyond the snapshot.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The running version when given with `--from` (else detected).
    pub from: Option<Version>,
    /// The target version.
    pub to: Option<Version>,
    /// Target manifests (`-f`), each with the file it came from.
    pub targets: Vec<(String, Value)>,
}

/// Resolved facts the rules and the runbook share.
pub struct Context<'a> {
    pub profile: &'a Profile,
    pub snapshot: &'a Snapshot,
    pub options: &'a Options,
    pub from: Version,
    pub to: Version,
    /// The persistence mode whose edge decides the verdict (the worst one when components
    /// differ).
    pub mode: Mode,
    /// That mode's edge.
    pub edge: Option<&'a Edge>,
    /// The mode of each component that holds data, as found.
    pub modes: BTreeMap<String, Mode>,
    pub instance: String,
}

impl<'a> Context<'a> {
    /// The persistence mode of a component: its own when it holds data and was found, else
    /// the deciding one.
    pub fn mode_of(&self, component: &Component) -> Mode {
        self.modes
            .get(&component.name)
            .copied()
            .unwrap_or(self.mode)
    }

    /// The distinct modes in use, each with the components in it (all of them when the
    /// modes came from one place, like a cluster file).
    pub fn modes_in_use(&self) -> BTreeMap<Mode, Vec<String>> {
        let mut out: BTreeMap<Mode, Vec<String>> = BTreeMap::new();
        for (name, mode) in &self.modes {
            out.entry(*mode).or_default().push(name.clone());
        }
        if out.is_empty() {
            out.insert(self.mode, Vec::new());
        }
        out
    }

    /// The edge that covers the move for components in `mode`.
    pub fn edge_for(&self, mode: Mode) -> Option<&'a Edge> {
        self.profile.edge(&self.from, &self.to, mode)
    }

    /// Every distinct edge that applies to a mode in use, in the order of the modes.
    pub fn edges_in_use(&self) -> Vec<&'a Edge> {
        let mut edges: Vec<&'a Edge> = Vec::new();
        for mode in self.modes_in_use().keys() {
            if let Some(edge) = self.edge_for(*mode)
                && !edges.iter().any(|e| std::ptr::eq(*e, edge))
            {
                edges.push(edge);
            }
        }
        edges
    }

    /// True when the target is the version running now: nothing to upgrade.
    pub fn at_target(&self) -> bool {
        upgrade_shared::profile::Change::between(&self.from, &self.to)
            == upgrade_shared::profile::Change::Same
    }

    /// True when the move is made by reinstalling for any component.
    pub fn reinstall(&self) -> bool {
        self.edges_in_use().iter().any(|e| e.reinstall)
    }

    /// The namespace a component lives in.
    pub fn namespace_of(&self, component: &Component) -> String {
        component
            .namespace
            .clone()
            .unwrap_or_else(|| self.snapshot.namespace.clone())
    }

    /// Workloads in the snapshot that belong to a component (selector on their labels or
    /// their pod template's labels).
    pub fn workloads_of(&self, component: &Component) -> Vec<WorkloadView<'_>> {
        component_views(
            self.profile,
            self.snapshot,
            &self.snapshot.namespace,
            &component.name,
        )
    }

    /// Pods in the snapshot that belong to a component.
    pub fn pods_of(&self, component: &Component) -> Vec<&'a k8s_openapi::api::core::v1::Pod> {
        component_pods(self.snapshot, component)
    }

    /// A version as the profile writes its versions (`v1.9.0` for FATE, `7.1.33` for FDB).
    pub fn display(&self, v: &Version) -> String {
        let prefixed = self
            .profile
            .versions
            .first()
            .is_some_and(|f| f.value.starts_with('v'));
        format!("{}{}", if prefixed { "v" } else { "" }, v.canonical())
    }
}

pub(crate) fn component_views<'a>(
    profile: &Profile,
    snapshot: &'a Snapshot,
    ns: &str,
    name: &str,
) -> Vec<WorkloadView<'a>> {
    let Some(component) = profile.component(name) else {
        return Vec::new();
    };
    let reqs = upgrade_shared::names::parse_selector(&component.selector).unwrap_or_default();
    let ns = component.namespace.as_deref().unwrap_or(ns);
    snapshot
        .workloads()
        .into_iter()
        .filter(|w| w.namespace.is_none_or(|n| n == ns))
        .filter(|w| {
            upgrade_shared::names::selector_matches(&reqs, w.labels)
                || upgrade_shared::names::selector_matches(
                    &reqs,
                    w.template
                        .and_then(|t| t.metadata.as_ref())
                        .and_then(|m| m.labels.as_ref()),
                )
        })
        .collect()
}

pub(crate) fn component_images(
    profile: &Profile,
    snapshot: &Snapshot,
    ns: &str,
    name: &str,
    container: Option<&str>,
) -> Vec<String> {
    let mut images = Vec::new();
    for w in component_views(profile, snapshot, ns, name) {
        let containers = w
            .template
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers.as_slice())
            .unwrap_or_default();
        for c in containers {
            if container.is_none_or(|want| want == c.name) {
                images.extend(c.image.clone());
            }
        }
    }
    images
}

pub(crate) fn component_labels<'a>(
    profile: &Profile,
    snapshot: &'a Snapshot,
    ns: &str,
    name: &str,
) -> Vec<&'a std::collections::BTreeMap<String, String>> {
    component_views(profile, snapshot, ns, name)
        .into_iter()
        .filter_map(|w| w.labels)
        .collect()
}

/// Pods in the snapshot that a component's selector picks, in its namespace.
pub(crate) fn component_pods<'a>(
    snapshot: &'a Snapshot,
    component: &Component,
) -> Vec<&'a k8s_openapi::api::core::v1::Pod> {
    let reqs = upgrade_shared::names::parse_selector(&component.selector).unwrap_or_default();
    let ns = component
        .namespace
        .as_deref()
        .unwrap_or(&snapshot.namespace);
    snapshot
        .pods
        .iter()
        .filter(|p| p.metadata.namespace.as_deref().is_none_or(|n| n == ns))
        .filter(|p| upgrade_shared::names::selector_matches(&reqs, p.metadata.labels.as_ref()))
        .collect()
}
