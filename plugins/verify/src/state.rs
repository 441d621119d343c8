//! What the namespace holds now, in one shape for `record` and `verify`: read from the cluster
//! by [`crate::cluster`], or built from YAML fixtures in tests. Queries here are pure.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod, PodTemplateSpec};
use serde_json::Value;
use upgrade_shared::profile::{self, Component, Profile};
use upgrade_shared::{names, pv_journal};

/// Objects of the namespaces in scope, and the volumes behind their claims.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// The namespace asked for.
    pub namespace: String,
    pub pods: Vec<Pod>,
    pub claims: Vec<PersistentVolumeClaim>,
    /// Volumes bound to the claims, and the recorded ones that still exist.
    pub volumes: Vec<PersistentVolume>,
    pub deployments: Vec<Deployment>,
    pub statefulsets: Vec<StatefulSet>,
    pub daemonsets: Vec<DaemonSet>,
    pub jobs: Vec<Job>,
    /// Custom resources of the kinds the profile reads, as JSON with apiVersion and kind.
    pub custom: Vec<Value>,
    /// Other namespaces read besides [`State::namespace`] (the profile's components').
    pub other_namespaces: Vec<String>,
    /// migrate-pv's journal per namespace: the copies it verified.
    pub pv_journal: BTreeMap<String, BTreeMap<String, pv_journal::Entry>>,
}

/// A workload of any kind, reduced to what is recorded and compared.
#[derive(Debug, Clone)]
pub struct WorkloadView<'a> {
    /// `deploy`, `sts` or `ds`.
    pub kind: &'static str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    pub labels: Option<&'a BTreeMap<String, String>>,
    pub template: Option<&'a PodTemplateSpec>,
    /// volumeClaimTemplates of a StatefulSet.
    pub claim_templates: Vec<&'a str>,
    pub rollout: Rollout,
}

/// The generation and replica counts a rollout is judged by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rollout {
    pub generation: i64,
    pub observed_generation: i64,
    /// Replicas asked for (DaemonSets: pods the controller should schedule).
    pub desired: i32,
    /// Pods of any revision (`status.replicas`).
    pub current: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    /// A StatefulSet whose currentRevision is not yet its updateRevision.
    pub revision_pending: bool,
}

impl Rollout {
    /// Why the rollout is not complete, or `None` when it is. The same tests as
    /// `kubectl rollout status` (kubectl's polymorphichelpers/rollout_status.go): the controller
    /// has seen the latest generation, every replica is updated, no old replica is left, and
    /// the updated ones are available (ready, for StatefulSets and DaemonSets).
    pub fn problem(&self) -> Option<String> {
        if self.observed_generation < self.generation {
            return Some(format!(
                "the controller has not observed generation {} yet (observed {})",
                self.generation, self.observed_generation
            ));
        }
        if self.updated < self.desired {
            return Some(format!(
                "{} of {} replicas updated",
                self.updated, self.desired
            ));
        }
        if self.current > self.updated {
            return Some(format!(
                "{} old replicas are pending termination",
                self.current - self.updated
            ));
        }
        if self.available < self.desired {
            return Some(format!(
                "{} of {} updated replicas available",
                self.available, self.desired
            ));
        }
        if self.revision_pending {
            return Some("the update revision is not yet the current revision".into());
        }
        None
    }
}

impl WorkloadView<'_> {
    /// `deploy/mysql`, the way kubectl names it.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    /// Image per container of the pod template.
    pub fn images(&self) -> BTreeMap<String, String> {
        self.template
            .and_then(|t| t.spec.as_ref())
            .map(|s| {
                s.containers
                    .iter()
                    .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every claim its pods use: mounted by name, and `<template>-<name>-<ordinal>`.
    pub fn claims(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .template
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.volumes.as_ref())
            .map(|vols| {
                vols.iter()
                    .filter_map(|v| v.persistent_volume_claim.as_ref())
                    .map(|c| c.claim_name.clone())
                    .collect()
            })
            .unwrap_or_default();
        out.extend(profile::statefulset_claims(
            &self.claim_templates,
            self.name,
            self.rollout.desired.max(1) as u32,
        ));
        out
    }

    /// True when the component's selector matches the workload or its pod template, or the
    /// profile names this workload (kind and name) as the component's at some version: a new
    /// version may label it differently (FATE v1.9.0's one `nodemanager` StatefulSet for the
    /// `nodemanager-0` and `nodemanager-1` Deployments of v1.8.0).
    pub fn belongs_to(&self, component: &Component) -> bool {
        let reqs = names::parse_selector(&component.selector).unwrap_or_default();
        names::selector_matches(&reqs, self.labels)
            || names::selector_matches(
                &reqs,
                self.template
                    .and_then(|t| t.metadata.as_ref())
                    .and_then(|m| m.labels.as_ref()),
            )
            || component
                .workloads
                .iter()
                .any(|w| w.kind.short() == self.kind && w.name == self.name)
    }
}

fn text(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or_default()
}

impl State {
    /// Every workload, of every kind.
    pub fn workloads(&self) -> Vec<WorkloadView<'_>> {
        let mut out = Vec::new();
        for d in &self.deployments {
            let spec = d.spec.as_ref();
            let status = d.status.clone().unwrap_or_default();
            out.push(WorkloadView {
                kind: "deploy",
                namespace: text(&d.metadata.namespace),
                name: text(&d.metadata.name),
                uid: text(&d.metadata.uid),
                labels: d.metadata.labels.as_ref(),
                template: spec.map(|s| &s.template),
                claim_templates: Vec::new(),
                rollout: Rollout {
                    generation: d.metadata.generation.unwrap_or(0),
                    observed_generation: status.observed_generation.unwrap_or(0),
                    desired: spec.and_then(|s| s.replicas).unwrap_or(1),
                    current: status.replicas.unwrap_or(0),
                    updated: status.updated_replicas.unwrap_or(0),
                    ready: status.ready_replicas.unwrap_or(0),
                    available: status.available_replicas.unwrap_or(0),
                    revision_pending: false,
                },
            });
        }
        for s in &self.statefulsets {
            let spec = s.spec.as_ref();
            let status = s.status.clone().unwrap_or_default();
            let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
            let ready = status.ready_replicas.unwrap_or(0);
            out.push(WorkloadView {
                kind: "sts",
                namespace: text(&s.metadata.namespace),
                name: text(&s.metadata.name),
                uid: text(&s.metadata.uid),
                labels: s.metadata.labels.as_ref(),
                template: spec.map(|s| &s.template),
                claim_templates: spec
                    .and_then(|s| s.volume_claim_templates.as_ref())
                    .map(|ts| {
                        ts.iter()
                            .filter_map(|t| t.metadata.name.as_deref())
                            .collect()
                    })
                    .unwrap_or_default(),
                rollout: Rollout {
                    generation: s.metadata.generation.unwrap_or(0),
                    observed_generation: status.observed_generation.unwrap_or(0),
                    desired,
                    current: status.replicas,
                    updated: status.updated_replicas.unwrap_or(0),
                    ready,
                    // kubectl's StatefulSet status waits for ready replicas.
                    available: ready,
                    revision_pending: desired > 0
                        && status.update_revision.is_some()
                        && status.current_revision != status.update_revision,
                },
            });
        }
        for d in &self.daemonsets {
            let status = d.status.clone().unwrap_or_default();
            out.push(WorkloadView {
                kind: "ds",
                namespace: text(&d.metadata.namespace),
                name: text(&d.metadata.name),
                uid: text(&d.metadata.uid),
                labels: d.metadata.labels.as_ref(),
                template: d.spec.as_ref().map(|s| &s.template),
                claim_templates: Vec::new(),
                rollout: Rollout {
                    generation: d.metadata.generation.unwrap_or(0),
                    observed_generation: status.observed_generation.unwrap_or(0),
                    desired: status.desired_number_scheduled,
                    current: status.current_number_scheduled,
                    updated: status.updated_number_scheduled.unwrap_or(0),
                    ready: status.number_ready,
                    available: status.number_available.unwrap_or(status.number_ready),
                    revision_pending: false,
                },
            });
        }
        out
    }

    /// The namespace a component lives in.
    pub fn namespace_of(&self, component: &Component) -> String {
        component
            .namespace
            .clone()
            .unwrap_or_else(|| self.namespace.clone())
    }

    /// Workloads of a profile component.
    pub fn component_workloads(&self, component: &Component) -> Vec<WorkloadView<'_>> {
        let ns = self.namespace_of(component);
        self.workloads()
            .into_iter()
            .filter(|w| w.namespace == ns && w.belongs_to(component))
            .collect()
    }

    /// The component a workload belongs to (the first whose selector matches).
    pub fn component_of<'p>(
        &self,
        profile: &'p Profile,
        w: &WorkloadView<'_>,
    ) -> Option<&'p Component> {
        profile
            .components
            .iter()
            .find(|c| self.namespace_of(c) == w.namespace && w.belongs_to(c))
    }

    /// True when objects of `namespace` were read.
    pub fn in_scope(&self, namespace: &str) -> bool {
        self.namespace == namespace || self.other_namespaces.iter().any(|n| n == namespace)
    }

    /// The claim with this name in this namespace.
    pub fn claim(&self, namespace: &str, name: &str) -> Option<&PersistentVolumeClaim> {
        self.claims.iter().find(|c| {
            c.metadata.name.as_deref() == Some(name)
                && c.metadata.namespace.as_deref() == Some(namespace)
        })
    }

    /// The volume with this name.
    pub fn volume(&self, name: &str) -> Option<&PersistentVolume> {
        self.volumes
            .iter()
            .find(|v| v.metadata.name.as_deref() == Some(name))
    }

    /// The volume bound to a claim (through the claim's volumeName).
    pub fn volume_of(&self, claim: &PersistentVolumeClaim) -> Option<&PersistentVolume> {
        claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .and_then(|n| self.volume(n))
    }

    /// Claims (namespace, name) that a workload or a pod of the namespaces uses.
    pub fn used_claims(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for w in self.workloads() {
            for c in w.claims() {
                out.push((w.namespace.to_string(), c));
            }
        }
        for p in &self.pods {
            let ns = text(&p.metadata.namespace).to_string();
            for v in p.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
                if let Some(c) = &v.persistent_volume_claim {
                    out.push((ns.clone(), c.claim_name.clone()));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Pods of a component: those its selector matches, and the pods of a StatefulSet the
    /// profile names as its workload (only the ordinal's pod when it is one replica of a
    /// shared StatefulSet; the controller names them `<statefulset>-<ordinal>`).
    pub fn component_pods(&self, component: &Component) -> Vec<&Pod> {
        let reqs = names::parse_selector(&component.selector).unwrap_or_default();
        let ns = self.namespace_of(component);
        let named = |p: &Pod| {
            let owner = p
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true) && o.kind == "StatefulSet");
            let name = p.metadata.name.as_deref().unwrap_or_default();
            owner.is_some_and(|o| {
                component.workloads.iter().any(|w| {
                    w.kind == profile::WorkloadKind::StatefulSet
                        && w.name == o.name
                        && w.ordinal.is_none_or(|n| name == format!("{}-{n}", w.name))
                })
            })
        };
        self.pods
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
            .filter(|p| names::selector_matches(&reqs, p.metadata.labels.as_ref()) || named(p))
            .collect()
    }

    /// Adds one object from a fixture or a list; kinds not read here are ignored.
    pub fn add(&mut self, value: Value) -> anyhow::Result<()> {
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        fn typed<T: serde::de::DeserializeOwned>(v: Value, kind: &str) -> anyhow::Result<T> {
            serde_json::from_value(v).map_err(|e| anyhow::anyhow!("{kind} is malformed: {e}"))
        }
        match kind.as_str() {
            "Pod" => self.pods.push(typed(value, &kind)?),
            "PersistentVolumeClaim" => self.claims.push(typed(value, &kind)?),
            "PersistentVolume" => self.volumes.push(typed(value, &kind)?),
            "Deployment" => self.deployments.push(typed(value, &kind)?),
            "StatefulSet" => self.statefulsets.push(typed(value, &kind)?),
            "DaemonSet" => self.daemonsets.push(typed(value, &kind)?),
            "Job" => self.jobs.push(typed(value, &kind)?),
            "ConfigMap" if value["metadata"]["name"] == pv_journal::NAME => {
                let ns = value["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or(&self.namespace)
                    .to_string();
                let mut entries = BTreeMap::new();
                for (key, text) in value["data"].as_object().into_iter().flatten() {
                    let entry = serde_json::from_str(text.as_str().unwrap_or_default())
                        .map_err(|e| anyhow::anyhow!("journal entry {key} is malformed: {e}"))?;
                    entries.insert(key.clone(), entry);
                }
                self.pv_journal.insert(ns, entries);
            }
            _ if value
                .get("apiVersion")
                .and_then(Value::as_str)
                .and_then(|a| a.split_once('/'))
                .is_some_and(|(group, _)| group.contains('.') && !group.ends_with(".k8s.io")) =>
            {
                self.custom.push(value)
            }
            _ => {}
        }
        Ok(())
    }
}

/// The state answers a profile's version sources.
pub struct VersionView<'a> {
    pub profile: &'a Profile,
    pub state: &'a State,
}

impl profile::VersionInputs for VersionView<'_> {
    fn cluster_file_field(&self, _field: &str) -> Option<String> {
        None
    }

    fn custom_field(&self, api_version: &str, kind: &str, field: &str) -> Option<String> {
        self.state
            .custom
            .iter()
            .filter(|o| o["apiVersion"] == *api_version && o["kind"] == *kind)
            .find_map(|o| {
                profile::field(o, field)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
    }

    fn images(&self, component: &str, container: Option<&str>) -> Vec<String> {
        let Some(c) = self.profile.component(component) else {
            return Vec::new();
        };
        self.state
            .component_workloads(c)
            .iter()
            .flat_map(|w| w.images())
            .filter(|(name, _)| container.is_none_or(|want| want == name))
            .map(|(_, image)| image)
            .collect()
    }

    fn labels(&self, component: &str) -> Vec<BTreeMap<String, String>> {
        let Some(c) = self.profile.component(component) else {
            return Vec::new();
        };
        self.state
            .component_workloads(c)
            .iter()
            .filter_map(|w| w.labels.cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollout_is_done_only_when_every_replica_is_new_and_available() {
        let done = Rollout {
            generation: 2,
            observed_generation: 2,
            desired: 2,
            current: 2,
            updated: 2,
            ready: 2,
            available: 2,
            revision_pending: false,
        };
        assert_eq!(done.problem(), None);
        let stale = Rollout {
            observed_generation: 1,
            ..done
        };
        assert!(stale.problem().expect("stale").contains("generation 2"));
        let half = Rollout { updated: 1, ..done };
        assert_eq!(half.problem().as_deref(), Some("1 of 2 replicas updated"));
        let old_left = Rollout { current: 3, ..done };
        assert_eq!(
            old_left.problem().as_deref(),
            Some("1 old replicas are pending termination")
        );
        let unready = Rollout {
            available: 1,
            ..done
        };
        assert_eq!(
            unready.problem().as_deref(),
            Some("1 of 2 updated replicas available")
        );
    }

    /// FATE v1.9.0 runs the node managers as one StatefulSet labelled `fateMoudle: nodemanager`,
    /// which the v1.8.0 selectors (`fateMoudle=nodemanager-0`, `-1`) do not match; the profile
    /// names it as each node manager's workload, with the ordinal its pod has.
    #[test]
    fn a_workload_the_profile_names_belongs_to_the_component_whatever_its_labels() {
        let fate = profile::builtin("fate").expect("fate");
        let nm = |name: &str| fate.component(name).expect("component");
        let mut state = State {
            namespace: "fate-9999".into(),
            ..State::default()
        };
        let labels = serde_json::json!({"fateMoudle": "nodemanager"});
        state
            .add(serde_json::json!({
                "apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": "nodemanager", "namespace": "fate-9999", "labels": labels},
                "spec": {"replicas": 2, "serviceName": "nodemanager",
                         "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": "nodemanager", "image": "federatedai/eggroll:1.9.0-release"}]}}}
            }))
            .expect("sts");
        for ordinal in 0..2 {
            state
                .add(serde_json::json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("nodemanager-{ordinal}"), "namespace": "fate-9999",
                                 "labels": {"fateMoudle": "nodemanager", "statefulset.kubernetes.io/pod-name": format!("nodemanager-{ordinal}")},
                                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "nodemanager", "uid": "u", "controller": true}]},
                    "spec": {"containers": [{"name": "nodemanager", "image": "federatedai/eggroll:1.9.0-release"}]}
                }))
                .expect("pod");
        }
        for (component, pod) in [
            ("nodemanager-0", "nodemanager-0"),
            ("nodemanager-1", "nodemanager-1"),
        ] {
            let refs: Vec<String> = state
                .component_workloads(nm(component))
                .iter()
                .map(WorkloadView::reference)
                .collect();
            assert_eq!(refs, ["sts/nodemanager"], "{component}");
            let pods: Vec<&str> = state
                .component_pods(nm(component))
                .iter()
                .filter_map(|p| p.metadata.name.as_deref())
                .collect();
            assert_eq!(pods, [pod], "{component}: its own ordinal's pod");
        }
        // A StatefulSet the profile does not name is still matched by the selector alone.
        assert!(state.component_workloads(nm("mysql")).is_empty());
    }
}
