//! The scheduler, for one node: binds pods whose nodeSelector and required node affinity match
//! the node and whose claims are bound; for unbound claims of `WaitForFirstConsumer` classes it
//! sets `volume.kubernetes.io/selected-node` so the volume can be provisioned or bound first
//! (pkg/scheduler/framework/plugins/volumebinding).

use serde_json::{Value, json};

use super::volumes::SELECTED_NODE;
use crate::sim::resources::builtin;
use crate::sim::selectors::LabelSelector;
use crate::sim::store::Part;
use crate::sim::{NODE, Shared, meta};

/// Whether node selector terms (ORed; expressions within a term ANDed) admit these labels; no
/// terms admit every node.
fn terms_match(terms: &Value, labels: &Value) -> bool {
    let terms = terms.as_array().cloned().unwrap_or_default();
    terms.is_empty()
        || terms.iter().any(|t| {
            let exprs = json!({"matchExpressions": t["matchExpressions"].as_array().cloned().unwrap_or_default()});
            LabelSelector::from_object(&exprs).is_some_and(|s| s.matches(labels))
        })
}

fn node_matches(pod: &Value, node: &Value) -> bool {
    let labels = &node["metadata"]["labels"];
    let selector_ok = pod["spec"]["nodeSelector"]
        .as_object()
        .is_none_or(|m| m.iter().all(|(k, v)| &labels[k] == v));
    let affinity_ok = terms_match(
        &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"],
        labels,
    );
    selector_ok && affinity_ok
}

fn set_condition(shared: &Shared, pod: &Value, status: &str, reason: &str, message: &str) {
    let pods = builtin("", "pods").expect("built in");
    let cond = json!({"type": "PodScheduled", "status": status, "reason": reason, "message": message, "lastProbeTime": null, "lastTransitionTime": meta::now()});
    let mut changed = false;
    let _ = shared.store.modify(
        &pods,
        meta::namespace(pod),
        meta::name(pod),
        Part::Status,
        |p| {
            let existing = p["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled"))
                .cloned();
            if existing.is_some_and(|e| e["status"] == status && e["reason"] == cond["reason"]) {
                return false;
            }
            let mut cs: Vec<Value> = p["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            cs.retain(|c| c["type"] != "PodScheduled");
            cs.push(cond);
            p["status"]["conditions"] = json!(cs);
            changed = true;
            true
        },
    );
    if changed {
        let (reason, message) = if status == "True" {
            (
                "Scheduled".to_string(),
                format!(
                    "Successfully assigned {}/{} to {NODE}",
                    meta::namespace(pod),
                    meta::name(pod)
                ),
            )
        } else {
            ("FailedScheduling".to_string(), message.to_string())
        };
        super::events::record(
            shared,
            pod,
            status != "True",
            &reason,
            &message,
            "default-scheduler",
        );
    }
}

/// One pass over unscheduled pods.
pub fn sync(shared: &Shared) {
    let pods_ri = builtin("", "pods").expect("built in");
    let pvc_ri = builtin("", "persistentvolumeclaims").expect("built in");
    let sc_ri = builtin("storage.k8s.io", "storageclasses").expect("built in");
    let pv_ri = builtin("", "persistentvolumes").expect("built in");
    let Ok(node) = shared
        .store
        .get(&builtin("", "nodes").expect("built in"), "", NODE)
    else {
        return;
    };
    for pod in shared
        .store
        .select(&pods_ri, |p| !p["spec"]["nodeName"].is_string())
    {
        if pod["spec"]["nodeName"].is_string() || meta::deleting(&pod) {
            continue;
        }
        if node["spec"]["unschedulable"] == json!(true) {
            set_condition(
                shared,
                &pod,
                "False",
                "Unschedulable",
                "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
            );
            continue;
        }
        if !node_matches(&pod, &node) {
            set_condition(
                shared,
                &pod,
                "False",
                "Unschedulable",
                "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
            );
            continue;
        }
        let ns = meta::namespace(&pod);
        let mut ready = true;
        for v in pod["spec"]["volumes"]
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
        {
            let Some(claim_name) = v["persistentVolumeClaim"]["claimName"].as_str() else {
                continue;
            };
            let Ok(claim) = shared.store.get(&pvc_ri, ns, claim_name) else {
                set_condition(
                    shared,
                    &pod,
                    "False",
                    "Unschedulable",
                    &format!("persistentvolumeclaim \"{claim_name}\" not found"),
                );
                ready = false;
                continue;
            };
            if claim["status"]["phase"] == "Bound" {
                // A bound volume's node affinity must admit the node (VolumeBinding filter).
                let pv = claim["spec"]["volumeName"]
                    .as_str()
                    .and_then(|v| shared.store.get(&pv_ri, "", v).ok());
                let terms = pv
                    .map(|p| p["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"].clone())
                    .unwrap_or(Value::Null);
                if !terms_match(&terms, &node["metadata"]["labels"]) {
                    set_condition(
                        shared,
                        &pod,
                        "False",
                        "Unschedulable",
                        "0/1 nodes are available: 1 node(s) had volume node affinity conflict. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
                    );
                    ready = false;
                }
                continue;
            }
            ready = false;
            let class = claim["spec"]["storageClassName"]
                .as_str()
                .and_then(|c| shared.store.get(&sc_ri, "", c).ok());
            if class.is_some_and(|c| c["volumeBindingMode"] == "WaitForFirstConsumer") {
                if !claim["metadata"]["annotations"][SELECTED_NODE].is_string() {
                    let _ = shared
                        .store
                        .modify(&pvc_ri, ns, claim_name, Part::Main, |c| {
                            c["metadata"]["annotations"][SELECTED_NODE] = json!(NODE);
                            true
                        });
                }
            } else {
                set_condition(
                    shared,
                    &pod,
                    "False",
                    "Unschedulable",
                    "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
                );
            }
        }
        if ready {
            let _ = shared
                .store
                .modify(&pods_ri, ns, meta::name(&pod), Part::Main, |p| {
                    p["spec"]["nodeName"] = json!(NODE);
                    true
                });
            set_condition(shared, &pod, "True", "", "");
        }
    }
}
