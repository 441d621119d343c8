//! Defaults and admission mutations applied on create, as the API server's defaulting functions
//! (pkg/apis/*/v1/defaults.go) and admission plugins (StorageObjectInUseProtection,
//! DefaultStorageClass) do.

use serde_json::{Value, json};

use super::resources::ResourceInfo;

fn set_default(v: &mut Value, key: &str, default: Value) {
    if v.get(key).is_none_or(Value::is_null) {
        v[key] = default;
    }
}

fn add_finalizer(obj: &mut Value, f: &str) {
    let fins = &mut obj["metadata"]["finalizers"];
    if !fins.is_array() {
        *fins = json!([]);
    }
    if let Some(a) = fins.as_array_mut()
        && !a.iter().any(|x| x == f)
    {
        a.push(json!(f));
    }
}

/// Defaults of a pod spec (also inside templates).
pub fn pod_spec(spec: &mut Value) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec[list].as_array_mut() {
            for c in cs {
                set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
                set_default(c, "terminationMessagePolicy", json!("File"));
                let tag = c["image"].as_str().unwrap_or_default();
                let latest = !tag.rsplit('/').next().unwrap_or_default().contains(':')
                    || tag.ends_with(":latest");
                set_default(
                    c,
                    "imagePullPolicy",
                    json!(if latest { "Always" } else { "IfNotPresent" }),
                );
                set_default(c, "resources", json!({}));
            }
        }
    }
}

/// Applies the create-time defaults of a kind.
pub fn on_create(ri: &ResourceInfo, obj: &mut Value) {
    match ri.kind.as_str() {
        "Namespace" => {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
            let name = obj["metadata"]["name"].clone();
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
        }
        "Pod" => {
            pod_spec(&mut obj["spec"]);
            set_default(obj, "status", json!({}));
            set_default(&mut obj["status"], "phase", json!("Pending"));
            obj["status"]["qosClass"] = json!("BestEffort");
        }
        "PersistentVolumeClaim" => {
            set_default(&mut obj["spec"], "volumeMode", json!("Filesystem"));
            obj["status"] = json!({"phase": "Pending"});
            add_finalizer(obj, "kubernetes.io/pvc-protection");
        }
        "PersistentVolume" => {
            set_default(
                &mut obj["spec"],
                "persistentVolumeReclaimPolicy",
                json!("Retain"),
            );
            set_default(&mut obj["spec"], "volumeMode", json!("Filesystem"));
            obj["status"] = json!({"phase": "Pending"});
            add_finalizer(obj, "kubernetes.io/pv-protection");
        }
        "StorageClass" => {
            set_default(obj, "reclaimPolicy", json!("Delete"));
            set_default(obj, "volumeBindingMode", json!("Immediate"));
        }
        "Deployment" => {
            let spec = &mut obj["spec"];
            set_default(spec, "replicas", json!(1));
            if spec["strategy"]["type"].as_str().is_none_or(str::is_empty) {
                spec["strategy"] = Value::Null;
            }
            set_default(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
            );
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
            pod_spec(&mut spec["template"]["spec"]);
        }
        "DaemonSet" => {
            let spec = &mut obj["spec"];
            if spec["updateStrategy"]["type"]
                .as_str()
                .is_none_or(str::is_empty)
            {
                spec["updateStrategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}});
            }
            set_default(spec, "revisionHistoryLimit", json!(10));
            pod_spec(&mut spec["template"]["spec"]);
        }
        "ReplicaSet" => {
            set_default(&mut obj["spec"], "replicas", json!(1));
            pod_spec(&mut obj["spec"]["template"]["spec"]);
        }
        "StatefulSet" => {
            let spec = &mut obj["spec"];
            set_default(spec, "replicas", json!(1));
            set_default(spec, "podManagementPolicy", json!("OrderedReady"));
            if spec["updateStrategy"]["type"]
                .as_str()
                .is_none_or(str::is_empty)
            {
                spec["updateStrategy"] = Value::Null;
            }
            set_default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            pod_spec(&mut spec["template"]["spec"]);
            if let Some(ts) = spec["volumeClaimTemplates"].as_array_mut() {
                for t in ts {
                    set_default(&mut t["spec"], "volumeMode", json!("Filesystem"));
                }
            }
        }
        "Job" => {
            let spec = &mut obj["spec"];
            set_default(spec, "completions", json!(1));
            set_default(spec, "parallelism", json!(1));
            set_default(spec, "backoffLimit", json!(6));
            set_default(spec, "completionMode", json!("NonIndexed"));
            set_default(spec, "suspend", json!(false));
            if spec["selector"].is_null() {
                let uid = obj["metadata"]["uid"].clone();
                let name = obj["metadata"]["name"].clone();
                obj["spec"]["selector"] =
                    json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
                let labels = &mut obj["spec"]["template"]["metadata"]["labels"];
                labels["batch.kubernetes.io/controller-uid"] = uid.clone();
                labels["batch.kubernetes.io/job-name"] = name.clone();
                labels["controller-uid"] = uid;
                labels["job-name"] = name;
            }
            pod_spec(&mut obj["spec"]["template"]["spec"]);
        }
        "PodDisruptionBudget" => {
            obj["status"] = json!({"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0, "observedGeneration": 0});
        }
        "CustomResourceDefinition" => {
            let names = obj["spec"]["names"].clone();
            obj["status"] = json!({
                "acceptedNames": names,
                "storedVersions": obj["spec"]["versions"].as_array().map(|vs| vs.iter().filter(|v| v["storage"] == json!(true)).map(|v| v["name"].clone()).collect::<Vec<_>>()).unwrap_or_default(),
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": obj["metadata"]["creationTimestamp"]},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": obj["metadata"]["creationTimestamp"]},
                ],
            });
        }
        _ => {}
    }
}
