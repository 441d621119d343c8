//! What the check reasons about: the application's objects, read from a live cluster or from
//! files, in one shape so the plan never knows where they came from.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::Value;
use upgrade_shared::names;

/// Objects of one application and the cluster-scoped objects behind them.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The namespace the application lives in.
    pub namespace: String,
    pub pods: Vec<Pod>,
    pub claims: Vec<PersistentVolumeClaim>,
    pub volumes: Vec<PersistentVolume>,
    pub deployments: Vec<Deployment>,
    pub statefulsets: Vec<StatefulSet>,
    pub daemonsets: Vec<DaemonSet>,
    pub pdbs: Vec<PodDisruptionBudget>,
    /// Custom resources (FoundationDBCluster, RokCluster, …) as they came.
    pub custom: Vec<Value>,
    /// A KubeFATE `cluster.yaml`, when one was given.
    pub cluster_file: Option<Value>,
    /// Entries of `kubectl upgrade-migrate-pv`'s journal in the namespace (its ConfigMap
    /// [`MIGRATE_PV_JOURNAL`]): what was adopted and copied, read as migrate-pv writes them.
    pub journal: std::collections::BTreeMap<String, upgrade_shared::pv_journal::Entry>,
    /// The database's own status as the profile's client-compatibility command printed it in
    /// one of its pods (`fdbcli --exec 'status json'`), or why it could not be read; `None`
    /// when it was not asked for (files only, or a move that does not need it).
    pub database_status: Option<Result<Value, String>>,
}

/// The ConfigMap in which `kubectl upgrade-migrate-pv` journals its work.
pub const MIGRATE_PV_JOURNAL: &str = upgrade_shared::pv_journal::NAME;

/// A workload of any kind, reduced to what the rules look at.
#[derive(Debug, Clone)]
pub struct WorkloadView<'a> {
    pub kind: &'static str,
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    pub labels: Option<&'a std::collections::BTreeMap<String, String>>,
    pub template: Option<&'a k8s_openapi::api::core::v1::PodTemplateSpec>,
    pub desired: i32,
    pub ready: i32,
    /// volumeClaimTemplates of a StatefulSet.
    pub claim_templates: Vec<&'a str>,
}

impl WorkloadView<'_> {
    /// `deploy/mysql`, the way kubectl names it.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    /// Claims the pod template mounts by name.
    pub fn mounted_claims(&self) -> Vec<String> {
        self.template
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.volumes.as_ref())
            .map(|vols| {
                vols.iter()
                    .filter_map(|v| {
                        v.persistent_volume_claim
                            .as_ref()
                            .map(|c| c.claim_name.clone())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every claim this workload uses: mounted ones, and `<template>-<name>-<ordinal>`.
    pub fn claims(&self) -> Vec<String> {
        let mut out = self.mounted_claims();
        out.extend(upgrade_shared::profile::statefulset_claims(
            &self.claim_templates,
            self.name,
            self.desired.max(1) as u32,
        ));
        out
    }
}

impl Snapshot {
    /// Adds one object read from a file or a list; unknown kinds are ignored, and a KubeFATE
    /// `cluster.yaml` (no `kind`, a `chartVersion`) is kept as the cluster file.
    pub fn add(&mut self, value: Value, origin: &str) -> anyhow::Result<()> {
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .map(str::to_string);
        let Some(kind) = kind else {
            if value.get("chartVersion").is_some() || value.get("chartName").is_some() {
                if let Some(name) = value.get("name").and_then(Value::as_str) {
                    names::check_name("cluster", name)
                        .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
                }
                if let Some(ns) = value.get("namespace").and_then(Value::as_str) {
                    names::check_name("namespace", ns)
                        .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
                }
                self.cluster_file = Some(value);
                return Ok(());
            }
            anyhow::bail!("{origin}: an object without `kind` that is not a KubeFATE cluster.yaml");
        };
        if let Some(name) = value.pointer("/metadata/name").and_then(Value::as_str) {
            names::check_name(&kind, name).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        }
        fn typed<T: serde::de::DeserializeOwned>(
            v: Value,
            kind: &str,
            origin: &str,
        ) -> anyhow::Result<T> {
            let name = v
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            serde_json::from_value(v)
                .map_err(|e| anyhow::anyhow!("{origin}: {kind} {name:?} is malformed: {e}"))
        }
        if kind == "ConfigMap"
            && value.pointer("/metadata/name").and_then(Value::as_str) == Some(MIGRATE_PV_JOURNAL)
        {
            self.add_journal(value.get("data"));
            return Ok(());
        }
        match kind.as_str() {
            "Pod" => self.pods.push(typed(value, &kind, origin)?),
            "PersistentVolumeClaim" => self.claims.push(typed(value, &kind, origin)?),
            "PersistentVolume" => self.volumes.push(typed(value, &kind, origin)?),
            "Deployment" => self.deployments.push(typed(value, &kind, origin)?),
            "StatefulSet" => self.statefulsets.push(typed(value, &kind, origin)?),
            "DaemonSet" => self.daemonsets.push(typed(value, &kind, origin)?),
            "PodDisruptionBudget" => self.pdbs.push(typed(value, &kind, origin)?),
            _ if value
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|a| a.contains('/') && !is_builtin_group(a)) =>
            {
                self.custom.push(value)
            }
            _ => {}
        }
        Ok(())
    }

    /// Takes the entries of migrate-pv's journal ConfigMap `data`; entries that do not read as
    /// [`upgrade_shared::pv_journal::Entry`] are left out (they prove nothing).
    pub fn add_journal(&mut self, data: Option<&Value>) {
        for (key, text) in data.and_then(Value::as_object).into_iter().flatten() {
            if let Some(entry) = text.as_str().and_then(|t| serde_json::from_str(t).ok()) {
                self.journal.insert(key.clone(), entry);
            }
        }
    }

    /// The namespace named by the objects themselves (first namespaced object, or the
    /// cluster file's `namespace`).
    pub fn namespace_from_objects(&self) -> Option<String> {
        let from_meta =
            |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| m.namespace.clone();
        self.cluster_file
            .as_ref()
            .and_then(|c| {
                c.get("namespace")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .or_else(|| self.deployments.iter().find_map(|o| from_meta(&o.metadata)))
            .or_else(|| {
                self.statefulsets
                    .iter()
                    .find_map(|o| from_meta(&o.metadata))
            })
            .or_else(|| self.claims.iter().find_map(|o| from_meta(&o.metadata)))
            .or_else(|| self.pods.iter().find_map(|o| from_meta(&o.metadata)))
            .or_else(|| {
                self.custom.iter().find_map(|o| {
                    o.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
            })
    }

    /// All workloads, of every kind.
    pub fn workloads(&self) -> Vec<WorkloadView<'_>> {
        let mut out = Vec::new();
        for d in &self.deployments {
            let spec = d.spec.as_ref();
            out.push(WorkloadView {
                kind: "deploy",
                name: d.metadata.name.as_deref().unwrap_or_default(),
                namespace: d.metadata.namespace.as_deref(),
                labels: d.metadata.labels.as_ref(),
                template: spec.map(|s| &s.template),
                desired: spec.and_then(|s| s.replicas).unwrap_or(1),
                ready: d
                    .status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0),
                claim_templates: Vec::new(),
            });
        }
        for s in &self.statefulsets {
            let spec = s.spec.as_ref();
            out.push(WorkloadView {
                kind: "sts",
                name: s.metadata.name.as_deref().unwrap_or_default(),
                namespace: s.metadata.namespace.as_deref(),
                labels: s.metadata.labels.as_ref(),
                template: spec.map(|s| &s.template),
                desired: spec.and_then(|s| s.replicas).unwrap_or(1),
                ready: s
                    .status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0),
                claim_templates: spec
                    .and_then(|s| s.volume_claim_templates.as_ref())
                    .map(|ts| {
                        ts.iter()
                            .filter_map(|t| t.metadata.name.as_deref())
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
        for d in &self.daemonsets {
            let status = d.status.as_ref();
            out.push(WorkloadView {
                kind: "ds",
                name: d.metadata.name.as_deref().unwrap_or_default(),
                namespace: d.metadata.namespace.as_deref(),
                labels: d.metadata.labels.as_ref(),
                template: d.spec.as_ref().map(|s| &s.template),
                desired: status.map_or(0, |s| s.desired_number_scheduled),
                ready: status.map_or(0, |s| s.number_ready),
                claim_templates: Vec::new(),
            });
        }
        out
    }

    /// The claim with this name in this namespace.
    pub fn claim(&self, namespace: &str, name: &str) -> Option<&PersistentVolumeClaim> {
        self.claims.iter().find(|c| {
            c.metadata.name.as_deref() == Some(name)
                && c.metadata
                    .namespace
                    .as_deref()
                    .is_none_or(|n| n == namespace)
        })
    }

    /// The volume bound to a claim (by the claim's volumeName or the volume's claimRef).
    pub fn volume_of(&self, claim: &PersistentVolumeClaim) -> Option<&PersistentVolume> {
        let by_name = claim.spec.as_ref().and_then(|s| s.volume_name.as_deref());
        self.volumes.iter().find(|v| {
            by_name.is_some_and(|n| v.metadata.name.as_deref() == Some(n))
                || v.spec
                    .as_ref()
                    .and_then(|s| s.claim_ref.as_ref())
                    .is_some_and(|r| {
                        r.name == claim.metadata.name
                            && (r.namespace.is_none() || r.namespace == claim.metadata.namespace)
                    })
        })
    }
}

fn is_builtin_group(api_version: &str) -> bool {
    let group = api_version.split('/').next().unwrap_or_default();
    !group.contains('.') || group.ends_with(".k8s.io")
}
