//! StatefulSets (pkg/controller/statefulset): pods `<set>-<ordinal>` created in order (each after
//! the previous is Running and Ready under `OrderedReady`), claims named
//! `<template>-<set>-<ordinal>` created from volumeClaimTemplates unless they already exist,
//! scale-down from the highest ordinal, and rolling updates from the highest ordinal down to the
//! partition.

use serde_json::{Value, json};

use super::deployments::{create_pod, strip_times};
use super::{pod_ready, pod_terminal, template_hash};
use crate::sim::resources::builtin;
use crate::sim::store::{DeleteOptions, Part};
use crate::sim::{Shared, meta};

/// One pass over stateful sets.
pub fn sync(shared: &Shared) {
    let sts_ri = builtin("apps", "statefulsets").expect("built in");
    let pods_ri = builtin("", "pods").expect("built in");
    let pods = shared.store.all(&pods_ri);
    for s in shared
        .store
        .all(&sts_ri)
        .iter()
        .filter(|s| !meta::deleting(s))
    {
        sync_one(shared, s, &pods);
    }
}

fn ensure_claims(shared: &Shared, set: &Value, ordinal: i64) {
    let pvc_ri = builtin("", "persistentvolumeclaims").expect("built in");
    let (ns, name) = (meta::namespace(set), meta::name(set));
    for t in set["spec"]["volumeClaimTemplates"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
    {
        let claim_name = format!("{}-{name}-{ordinal}", meta::name(t));
        if shared.store.get(&pvc_ri, ns, &claim_name).is_ok() {
            continue;
        }
        let mut md = t["metadata"].clone();
        if !md.is_object() {
            md = json!({});
        }
        md["name"] = json!(claim_name);
        if let Some(sel) = set["spec"]["selector"]["matchLabels"].as_object() {
            for (k, v) in sel {
                md["labels"][k] = v.clone();
            }
        }
        let _ = shared.store.create(
            &pvc_ri,
            ns,
            json!({"metadata": md, "spec": t["spec"]}),
            false,
        );
    }
}

fn pod_for(set: &Value, ordinal: i64, revision: &str) -> Value {
    let name = meta::name(set);
    let pod_name = format!("{name}-{ordinal}");
    let mut t = set["spec"]["template"].clone();
    let labels = &mut t["metadata"]["labels"];
    labels["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
    labels["apps.kubernetes.io/pod-index"] = json!(ordinal.to_string());
    labels["controller-revision-hash"] = json!(revision);
    t["spec"]["hostname"] = json!(pod_name);
    if let Some(svc) = set["spec"]["serviceName"].as_str() {
        t["spec"]["subdomain"] = json!(svc);
    }
    let mut volumes: Vec<Value> = t["spec"]["volumes"].as_array().cloned().unwrap_or_default();
    for c in set["spec"]["volumeClaimTemplates"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
    {
        let vname = meta::name(c).to_string();
        volumes.retain(|v| v["name"] != json!(vname));
        volumes.push(json!({"name": vname, "persistentVolumeClaim": {"claimName": format!("{vname}-{name}-{ordinal}")}}));
    }
    if !volumes.is_empty() {
        t["spec"]["volumes"] = json!(volumes);
    }
    t
}

/// Keeps a ControllerRevision per template (what `kubectl rollout history|undo sts` reads): its
/// `data` is the patch that restores the template, and returning to an old template makes that
/// revision the newest (pkg/controller/history).
fn record_revision(shared: &Shared, set: &Value, revision: &str) {
    let cr_ri = builtin("apps", "controllerrevisions").expect("built in");
    let ns = meta::namespace(set);
    let uid = meta::uid(set);
    let owned: Vec<Value> = shared.store.select(&cr_ri, |r| {
        meta::namespace(r) == ns && meta::controller_ref(r).is_some_and(|o| o["uid"] == uid)
    });
    let max = owned
        .iter()
        .filter_map(|r| r["revision"].as_i64())
        .max()
        .unwrap_or(0);
    match owned.iter().find(|r| meta::name(r) == revision) {
        Some(r) if r["revision"].as_i64() == Some(max) => {}
        Some(_) => {
            let _ = shared.store.modify(&cr_ri, ns, revision, Part::Main, |r| {
                r["revision"] = json!(max + 1);
                true
            });
        }
        None => {
            let mut template = set["spec"]["template"].clone();
            template["$patch"] = json!("replace");
            let mut labels = set["spec"]["selector"]["matchLabels"].clone();
            if !labels.is_object() {
                labels = json!({});
            }
            labels["controller.kubernetes.io/hash"] =
                json!(revision.rsplit('-').next().unwrap_or_default());
            let cr = json!({
                "metadata": {"name": revision, "namespace": ns, "labels": labels, "ownerReferences": [meta::controller_ref_to(set)]},
                "data": {"spec": {"template": template}},
                "revision": max + 1,
            });
            let _ = shared.store.create(&cr_ri, ns, cr, false);
        }
    }
}

fn sync_one(shared: &Shared, set: &Value, pods: &[Value]) {
    let sts_ri = builtin("apps", "statefulsets").expect("built in");
    let pods_ri = builtin("", "pods").expect("built in");
    let (ns, name, uid) = (meta::namespace(set), meta::name(set), meta::uid(set));
    let replicas = set["spec"]["replicas"].as_i64().unwrap_or(1);
    let ordered = set["spec"]["podManagementPolicy"] != "Parallel";
    let revision = format!("{name}-{}", template_hash(&set["spec"]["template"]));
    record_revision(shared, set, &revision);
    let ordinal_of = |p: &Value| {
        meta::name(p)
            .strip_prefix(&format!("{name}-"))
            .and_then(|o| o.parse::<i64>().ok())
    };
    let orphans: Vec<Value> = pods
        .iter()
        .filter(|p| ordinal_of(p).is_some())
        .cloned()
        .collect();
    if super::adopt(shared, set, &orphans, &pods_ri) {
        return;
    }
    let mine: Vec<&Value> = pods
        .iter()
        .filter(|p| {
            meta::namespace(p) == ns
                && meta::controller_ref(p).is_some_and(|o| o["uid"] == uid)
                && ordinal_of(p).is_some()
        })
        .collect();
    let by_ordinal = |i: i64| mine.iter().find(|p| ordinal_of(p) == Some(i)).copied();
    // Create missing pods in order.
    for i in 0..replicas {
        match by_ordinal(i) {
            Some(p) if pod_terminal(p) && !meta::deleting(p) => {
                let _ = shared
                    .store
                    .delete(&pods_ri, ns, meta::name(p), &DeleteOptions::default());
                break;
            }
            Some(p) => {
                if ordered && (!pod_ready(p) || meta::deleting(p)) {
                    break;
                }
            }
            None => {
                ensure_claims(shared, set, i);
                if create_pod(
                    shared,
                    set,
                    &pod_for(set, i, &revision),
                    Some(format!("{name}-{i}")),
                    "",
                )
                .is_some()
                {
                    super::events::record(
                        shared,
                        set,
                        false,
                        "SuccessfulCreate",
                        &format!("create Pod {name}-{i} in StatefulSet {name} successful"),
                        "statefulset-controller",
                    );
                }
                if ordered {
                    break;
                }
            }
        }
    }
    // Scale down from the highest ordinal.
    let mut extra: Vec<&Value> = mine
        .iter()
        .filter(|p| ordinal_of(p).is_some_and(|o| o >= replicas) && !meta::deleting(p))
        .copied()
        .collect();
    extra.sort_by_key(|p| std::cmp::Reverse(ordinal_of(p)));
    for p in extra.iter().take(if ordered { 1 } else { extra.len() }) {
        let _ = shared
            .store
            .delete(&pods_ri, ns, meta::name(p), &DeleteOptions::default());
    }
    // Rolling update: replace the highest outdated pod once all others are ready.
    let rolling = set["spec"]["updateStrategy"]["type"] != "OnDelete";
    let partition = set["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
        .as_i64()
        .unwrap_or(0);
    let live: Vec<&Value> = mine
        .iter()
        .filter(|p| ordinal_of(p).is_some_and(|o| o < replicas))
        .copied()
        .collect();
    let all_ready =
        live.len() as i64 == replicas && live.iter().all(|p| pod_ready(p) && !meta::deleting(p));
    if rolling && all_ready {
        let mut outdated: Vec<&Value> = live
            .iter()
            .filter(|p| {
                p["metadata"]["labels"]["controller-revision-hash"] != json!(revision)
                    && ordinal_of(p).unwrap_or(0) >= partition
            })
            .copied()
            .collect();
        outdated.sort_by_key(|p| std::cmp::Reverse(ordinal_of(p)));
        if let Some(p) = outdated.first() {
            let _ = shared
                .store
                .delete(&pods_ri, ns, meta::name(p), &DeleteOptions::default());
        }
    }
    let ready = live.iter().filter(|p| pod_ready(p)).count();
    let updated = live
        .iter()
        .filter(|p| p["metadata"]["labels"]["controller-revision-hash"] == json!(revision))
        .count();
    let current_revision = if updated == live.len() && live.len() as i64 == replicas {
        revision.clone()
    } else {
        set["status"]["currentRevision"]
            .as_str()
            .unwrap_or(&revision)
            .to_string()
    };
    let mut status = json!({
        "observedGeneration": set["metadata"]["generation"], "replicas": live.len(), "readyReplicas": ready,
        "currentReplicas": if current_revision == revision { updated } else { live.len() - updated }, "updatedReplicas": updated,
        "availableReplicas": ready, "currentRevision": current_revision, "updateRevision": revision, "collisionCount": 0,
    });
    for k in ["readyReplicas", "currentReplicas", "updatedReplicas"] {
        if status[k] == json!(0) {
            status.as_object_mut().map(|m| m.remove(k));
        }
    }
    let _ = shared.store.modify(&sts_ri, ns, name, Part::Status, |o| {
        let same = strip_times(&o["status"]) == strip_times(&status);
        o["status"] = status;
        !same
    });
}
