//! `meta.k8s.io/v1` `Table` responses for `kubectl get` (which asks for
//! `application/json;as=Table;v=v1;g=meta.k8s.io`), with the columns of the built-in printers
//! (pkg/printers/internalversion/printers.go) for the kinds this suite shows most.

use serde_json::{Value, json};

use super::meta;
use super::resources::ResourceInfo;

fn age(obj: &Value) -> String {
    let s = meta::age_seconds(
        obj["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default(),
    )
    .max(0);
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn s(v: &Value) -> Value {
    match v {
        Value::Null => json!("<none>"),
        Value::String(x) if x.is_empty() => json!("<none>"),
        other => other.clone(),
    }
}

fn num(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn access_modes(v: &Value) -> String {
    let short = |m: &str| match m {
        "ReadWriteOnce" => "RWO",
        "ReadOnlyMany" => "ROX",
        "ReadWriteMany" => "RWX",
        "ReadWriteOncePod" => "RWOP",
        _ => "",
    };
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m.as_str())
                .map(short)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn pod_status(pod: &Value) -> (String, String, i64) {
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = pod["spec"]["containers"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    let ready = statuses
        .iter()
        .filter(|c| c["ready"] == json!(true))
        .count();
    let restarts = statuses.iter().map(|c| num(&c["restartCount"])).sum();
    let mut reason = pod["status"]["reason"]
        .as_str()
        .or(pod["status"]["phase"].as_str())
        .unwrap_or("Pending")
        .to_string();
    for c in &statuses {
        if let Some(r) = c["state"]["waiting"]["reason"].as_str() {
            reason = r.to_string();
        } else if let Some(r) = c["state"]["terminated"]["reason"].as_str()
            && reason == "Running"
        {
            reason = r.to_string();
        }
    }
    if meta::deleting(pod) {
        reason = "Terminating".into();
    }
    (format!("{ready}/{total}"), reason, restarts)
}

/// Column names live as long as the process (a handful per CRD version).
fn leak(s: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    let set = names.get_or_insert_with(HashSet::new);
    if let Some(found) = set.get(s) {
        return found;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    set.insert(leaked);
    leaked
}

/// A cell from a simple JSONPath (`.status.health.available`); creationTimestamp shows as an age.
fn printer_cell(o: &Value, path: &str) -> Value {
    let mut cur = o;
    for part in path
        .trim_start_matches('.')
        .split('.')
        .filter(|p| !p.is_empty())
    {
        cur = &cur[part];
    }
    if path == ".metadata.creationTimestamp" {
        return json!(age(o));
    }
    cur.clone()
}

/// Column names and cells of one object.
fn columns(ri: &ResourceInfo, o: &Value) -> (Vec<(&'static str, &'static str)>, Vec<Value>) {
    let st = &o["status"];
    let sp = &o["spec"];
    match ri.kind.as_str() {
        "Pod" => {
            let (ready, status, restarts) = pod_status(o);
            (
                vec![
                    ("Ready", "string"),
                    ("Status", "string"),
                    ("Restarts", "string"),
                    ("Age", "string"),
                    ("IP", "string"),
                    ("Node", "string"),
                ],
                vec![
                    json!(ready),
                    json!(status),
                    json!(restarts.to_string()),
                    json!(age(o)),
                    s(&st["podIP"]),
                    s(&sp["nodeName"]),
                ],
            )
        }
        "PersistentVolumeClaim" => (
            vec![
                ("Status", "string"),
                ("Volume", "string"),
                ("Capacity", "string"),
                ("Access Modes", "string"),
                ("StorageClass", "string"),
                ("VolumeAttributesClass", "string"),
                ("Age", "string"),
                ("VolumeMode", "string"),
            ],
            vec![
                s(&st["phase"]),
                json!(sp["volumeName"].as_str().unwrap_or_default()),
                json!(st["capacity"]["storage"].as_str().unwrap_or_default()),
                json!(access_modes(&st["accessModes"])),
                s(&sp["storageClassName"]),
                json!("<unset>"),
                json!(age(o)),
                s(&sp["volumeMode"]),
            ],
        ),
        "PersistentVolume" => {
            let claim = match sp["claimRef"]["name"].as_str() {
                Some(n) => format!(
                    "{}/{n}",
                    sp["claimRef"]["namespace"].as_str().unwrap_or_default()
                ),
                None => String::new(),
            };
            (
                vec![
                    ("Capacity", "string"),
                    ("Access Modes", "string"),
                    ("Reclaim Policy", "string"),
                    ("Status", "string"),
                    ("Claim", "string"),
                    ("StorageClass", "string"),
                    ("VolumeAttributesClass", "string"),
                    ("Reason", "string"),
                    ("Age", "string"),
                ],
                vec![
                    s(&sp["capacity"]["storage"]),
                    json!(access_modes(&sp["accessModes"])),
                    s(&sp["persistentVolumeReclaimPolicy"]),
                    s(&st["phase"]),
                    json!(claim),
                    json!(sp["storageClassName"].as_str().unwrap_or_default()),
                    json!("<unset>"),
                    json!(st["reason"].as_str().unwrap_or_default()),
                    json!(age(o)),
                ],
            )
        }
        "Deployment" => (
            vec![
                ("Ready", "string"),
                ("Up-to-date", "string"),
                ("Available", "string"),
                ("Age", "string"),
            ],
            vec![
                json!(format!(
                    "{}/{}",
                    num(&st["readyReplicas"]),
                    num(&sp["replicas"])
                )),
                json!(num(&st["updatedReplicas"])),
                json!(num(&st["availableReplicas"])),
                json!(age(o)),
            ],
        ),
        "StatefulSet" => (
            vec![("Ready", "string"), ("Age", "string")],
            vec![
                json!(format!(
                    "{}/{}",
                    num(&st["readyReplicas"]),
                    num(&sp["replicas"])
                )),
                json!(age(o)),
            ],
        ),
        "DaemonSet" => (
            vec![
                ("Desired", "integer"),
                ("Current", "integer"),
                ("Ready", "integer"),
                ("Up-to-date", "integer"),
                ("Available", "integer"),
                ("Node Selector", "string"),
                ("Age", "string"),
            ],
            vec![
                json!(num(&st["desiredNumberScheduled"])),
                json!(num(&st["currentNumberScheduled"])),
                json!(num(&st["numberReady"])),
                json!(num(&st["updatedNumberScheduled"])),
                json!(num(&st["numberAvailable"])),
                json!("<none>"),
                json!(age(o)),
            ],
        ),
        "ReplicaSet" => (
            vec![
                ("Desired", "integer"),
                ("Current", "integer"),
                ("Ready", "integer"),
                ("Age", "string"),
            ],
            vec![
                json!(num(&sp["replicas"])),
                json!(num(&st["replicas"])),
                json!(num(&st["readyReplicas"])),
                json!(age(o)),
            ],
        ),
        "Job" => {
            let status = if st["succeeded"].as_i64().unwrap_or(0)
                >= sp["completions"].as_i64().unwrap_or(1)
            {
                "Complete"
            } else if st["failed"].as_i64().unwrap_or(0) > 0
                && st["active"].as_i64().unwrap_or(0) == 0
            {
                "Failed"
            } else {
                "Running"
            };
            (
                vec![
                    ("Status", "string"),
                    ("Completions", "string"),
                    ("Duration", "string"),
                    ("Age", "string"),
                ],
                vec![
                    json!(status),
                    json!(format!(
                        "{}/{}",
                        num(&st["succeeded"]),
                        sp["completions"].as_i64().unwrap_or(1)
                    )),
                    json!(""),
                    json!(age(o)),
                ],
            )
        }
        "Namespace" => (
            vec![("Status", "string"), ("Age", "string")],
            vec![s(&st["phase"]), json!(age(o))],
        ),
        "StorageClass" => {
            let default = o["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"]
                == "true";
            (
                vec![
                    ("Provisioner", "string"),
                    ("ReclaimPolicy", "string"),
                    ("VolumeBindingMode", "string"),
                    ("AllowVolumeExpansion", "string"),
                    ("Age", "string"),
                ],
                vec![
                    s(&o["provisioner"]),
                    s(&o["reclaimPolicy"]),
                    s(&o["volumeBindingMode"]),
                    json!(
                        o["allowVolumeExpansion"]
                            .as_bool()
                            .unwrap_or(false)
                            .to_string()
                    ),
                    json!(age(o)),
                ]
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    if i == 0 && default {
                        json!(format!("{} (default)", v.as_str().unwrap_or_default()))
                    } else {
                        v
                    }
                })
                .collect(),
            )
        }
        "ConfigMap" => (
            vec![("Data", "integer"), ("Age", "string")],
            vec![
                json!(o["data"].as_object().map(|m| m.len()).unwrap_or(0)),
                json!(age(o)),
            ],
        ),
        "Secret" => (
            vec![("Type", "string"), ("Data", "integer"), ("Age", "string")],
            vec![
                s(&o["type"]),
                json!(o["data"].as_object().map(|m| m.len()).unwrap_or(0)),
                json!(age(o)),
            ],
        ),
        "Node" => (
            vec![
                ("Status", "string"),
                ("Roles", "string"),
                ("Age", "string"),
                ("Version", "string"),
            ],
            vec![
                json!("Ready"),
                json!("<none>"),
                json!(age(o)),
                s(&st["nodeInfo"]["kubeletVersion"]),
            ],
        ),
        "PodDisruptionBudget" => (
            vec![
                ("Min Available", "string"),
                ("Max Unavailable", "string"),
                ("Allowed Disruptions", "integer"),
                ("Age", "string"),
            ],
            vec![
                json!(
                    sp["minAvailable"]
                        .as_str()
                        .map(String::from)
                        .or(sp["minAvailable"].as_i64().map(|n| n.to_string()))
                        .unwrap_or("N/A".into())
                ),
                json!(
                    sp["maxUnavailable"]
                        .as_str()
                        .map(String::from)
                        .or(sp["maxUnavailable"].as_i64().map(|n| n.to_string()))
                        .unwrap_or("N/A".into())
                ),
                json!(num(&st["disruptionsAllowed"])),
                json!(age(o)),
            ],
        ),
        _ if !ri.printer_columns.is_empty() => {
            let defs = ri
                .printer_columns
                .iter()
                .map(|(n, t, _)| (leak(n), leak(t)))
                .collect();
            let cells = ri
                .printer_columns
                .iter()
                .map(|(_, _, path)| printer_cell(o, path))
                .collect();
            (defs, cells)
        }
        _ => (vec![("Age", "string")], vec![json!(age(o))]),
    }
}

/// Renders a list (or one object) as a Table. `include` is the `includeObject` parameter.
pub fn render(ri: &ResourceInfo, items: &[Value], list_meta: Value, include: &str) -> Value {
    let sample = items
        .first()
        .cloned()
        .unwrap_or_else(|| json!({"metadata": {}}));
    let (cols, _) = columns(ri, &sample);
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    for (i, (name, ty)) in cols.iter().enumerate() {
        let priority = if matches!(*name, "IP" | "Node" | "VolumeMode")
            || (ri.kind == "PersistentVolumeClaim" && i == 5)
            || (ri.kind == "PersistentVolume" && i == 6)
        {
            1
        } else {
            0
        };
        defs.push(json!({"name": name, "type": ty, "format": "", "description": "", "priority": priority}));
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![json!(meta::name(o))];
            cells.extend(columns(ri, o).1);
            let object = match include {
                "Object" => o.clone(),
                "None" => Value::Null,
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": defs, "rows": rows})
}
