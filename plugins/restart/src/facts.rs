//! Pure extraction from API objects: a pod's readiness, reasons, images and controller; the
//! process groups a custom resource lists; a health field. The executor reads objects, these
//! functions say what they mean, and the tests feed them YAML.

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use upgrade_shared::profile::{ProcessGroups, field};

use crate::select::{GroupFacts, PodFacts};

/// True when the pod's Ready condition is True.
pub fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pod's controller as `Kind/name`.
pub fn controller(pod: &Pod) -> Option<String> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| format!("{}/{}", o.kind, o.name))
}

/// What selection needs from a pod.
pub fn pod(pod: &Pod) -> PodFacts {
    let status = pod.status.clone().unwrap_or_default();
    let is_ready = ready(pod);
    let mut reasons = Vec::new();
    if let Some(phase) = &status.phase {
        reasons.push(phase.clone());
    }
    if !is_ready && status.phase.as_deref() != Some("Succeeded") {
        reasons.push("NotReady".into());
    }
    if let Some(r) = &status.reason {
        reasons.push(r.clone());
    }
    for cs in status.container_statuses.iter().flatten() {
        let state = cs.state.clone().unwrap_or_default();
        if let Some(r) = state.waiting.and_then(|w| w.reason) {
            reasons.push(r);
        }
        if let Some(r) = state.terminated.and_then(|t| t.reason) {
            reasons.push(r);
        }
        if let Some(r) = cs
            .last_state
            .as_ref()
            .and_then(|l| l.terminated.as_ref())
            .and_then(|t| t.reason.clone())
        {
            reasons.push(r);
        }
    }
    let images = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
        .collect();
    PodFacts {
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        ready: is_ready,
        deleting: pod.metadata.deletion_timestamp.is_some(),
        reasons,
        images,
        controller: controller(pod),
    }
}

/// The process groups one custom resource lists.
pub fn groups(resource: &Value, spec: &ProcessGroups) -> Vec<GroupFacts> {
    let instance = resource["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(list) = field(resource, &spec.list).and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|g| {
            let id = field(g, &spec.id)?.as_str()?.to_string();
            let conditions = field(g, &spec.conditions)
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .filter_map(|c| c["type"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let marked_for_removal = spec
                .removal
                .as_ref()
                .is_some_and(|r| field(g, r).is_some_and(|v| !matches!(v, Value::Bool(false))));
            Some(GroupFacts {
                instance: instance.clone(),
                id,
                conditions,
                marked_for_removal,
            })
        })
        .collect()
}

/// How far the operator got with a resource's current spec: `metadata.generation` and the
/// newest generation any stage in the object at `path` records (`status.generations`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    pub generation: i64,
    pub newest: Option<i64>,
}

impl Observed {
    /// True once the operator acted on the current spec (a stage records its generation).
    pub fn current(&self) -> bool {
        self.newest.is_some_and(|n| n >= self.generation)
    }
}

/// The generations of one resource; a resource without `metadata.generation` counts as seen.
pub fn observed(resource: &Value, path: &str) -> Observed {
    let generation = resource["metadata"]["generation"].as_i64().unwrap_or(0);
    let newest = field(resource, path)
        .and_then(Value::as_object)
        .and_then(|o| o.values().filter_map(Value::as_i64).max());
    Observed { generation, newest }
}

/// `Some(true)` when the field is `true`, `Some(false)` when it is anything else, `None` when
/// absent.
pub fn healthy(resource: &Value, path: &str) -> Option<bool> {
    field(resource, path).map(|v| v == &Value::Bool(true))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_json::to_value(serde_saphyr::from_str::<serde_json::Value>(text).unwrap()).unwrap()
    }

    #[test]
    fn the_current_generation_is_observed_once_any_stage_records_it() {
        let cr = |status: &str| {
            yaml(&format!(
                "metadata: {{name: sample, generation: 2}}\nstatus: {status}\n"
            ))
        };
        let path = "status.generations";
        let old = observed(&cr("{generations: {reconciled: 1}}"), path);
        assert_eq!(
            old,
            Observed {
                generation: 2,
                newest: Some(1)
            }
        );
        assert!(!old.current());
        assert!(!observed(&cr("{}"), path).current());
        assert!(observed(&cr("{generations: {reconciled: 2}}"), path).current());
        assert!(
            observed(
                &cr("{generations: {reconciled: 1, hasUnhealthyProcess: 2}}"),
                path
            )
            .current()
        );
    }

    #[test]
    fn a_crash_looping_pod_reads_as_not_ready_with_its_reasons() {
        let p: Pod = serde_json::from_value(yaml(
            r#"
metadata:
  name: web-1
  uid: u1
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-5d, uid: r1, controller: true}]
spec:
  containers: [{name: web, image: "nginx:1.25"}]
status:
  phase: Running
  conditions: [{type: Ready, status: "False"}]
  containerStatuses:
  - name: web
    image: nginx:1.25
    imageID: ""
    ready: false
    restartCount: 4
    state: {waiting: {reason: CrashLoopBackOff}}
    lastState: {terminated: {reason: OOMKilled, exitCode: 137}}
"#,
        ))
        .unwrap();
        let f = pod(&p);
        assert!(!f.ready);
        assert_eq!(
            f.reasons,
            ["Running", "NotReady", "CrashLoopBackOff", "OOMKilled"]
        );
        assert_eq!(f.controller.as_deref(), Some("ReplicaSet/web-5d"));
        assert_eq!(f.images, [("web".to_string(), "nginx:1.25".to_string())]);
    }

    #[test]
    fn process_groups_with_conditions_and_removal() {
        let spec: ProcessGroups = serde_saphyr::from_str(
            "customResource: {apiVersion: apps.foundationdb.org/v1beta2, kind: FoundationDBCluster}\nlist: status.processGroups\nid: processGroupID\nconditions: processGroupConditions\nremoval: removalTimestamp\npodLabel: foundationdb.org/fdb-process-group-id\n",
        )
        .unwrap();
        let cr = yaml(
            r#"
metadata: {name: sample}
status:
  health: {available: false}
  processGroups:
  - {processGroupID: storage-1, processGroupConditions: [{type: MissingProcesses, timestamp: 1}]}
  - {processGroupID: log-1, removalTimestamp: "2024-01-01T00:00:00Z", processGroupConditions: [{type: IncorrectCommandLine}]}
  - {processGroupID: log-2}
"#,
        );
        let g = groups(&cr, &spec);
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].conditions, ["MissingProcesses"]);
        assert!(!g[0].marked_for_removal && g[1].marked_for_removal);
        assert!(g[2].conditions.is_empty());
        assert_eq!(g[0].instance, "sample");
        assert_eq!(healthy(&cr, "status.health.available"), Some(false));
        assert_eq!(healthy(&cr, "status.health.healthy"), None);
    }
}
