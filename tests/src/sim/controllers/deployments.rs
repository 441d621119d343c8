//! Deployments and ReplicaSets (pkg/controller/deployment, pkg/controller/replicaset): a
//! ReplicaSet per pod template named `<deployment>-<pod-template-hash>`, rolling replacement
//! (new pods first, old ones scaled down as new ones become ready) or Recreate, and status.

use serde_json::{Value, json};

use super::{pod_ready, pod_terminal, template_hash};
use crate::sim::resources::builtin;
use crate::sim::store::{DeleteOptions, Part};
use crate::sim::{Shared, meta};

/// One pass over deployments and replica sets.
pub fn sync(shared: &Shared) {
    let deploy = builtin("apps", "deployments").expect("built in");
    let rs_ri = builtin("apps", "replicasets").expect("built in");
    let pods_ri = builtin("", "pods").expect("built in");
    let all_rs = shared.store.all(&rs_ri);
    for d in shared
        .store
        .all(&deploy)
        .iter()
        .filter(|d| !meta::deleting(d))
    {
        sync_deployment(shared, d, &all_rs);
    }
    let pods = shared.store.all(&pods_ri);
    for rs in shared
        .store
        .all(&rs_ri)
        .iter()
        .filter(|r| !meta::deleting(r))
    {
        sync_replicaset(shared, rs, &pods);
    }
}

fn sync_deployment(shared: &Shared, d: &Value, all_rs: &[Value]) {
    let rs_ri = builtin("apps", "replicasets").expect("built in");
    let deploy = builtin("apps", "deployments").expect("built in");
    let (ns, name, uid) = (meta::namespace(d), meta::name(d), meta::uid(d));
    let desired = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let hash = template_hash(&d["spec"]["template"]);
    if super::adopt(shared, d, all_rs, &rs_ri) {
        return;
    }
    let owned: Vec<&Value> = all_rs
        .iter()
        .filter(|r| {
            meta::namespace(r) == ns && meta::controller_ref(r).is_some_and(|o| o["uid"] == uid)
        })
        .collect();
    // The new ReplicaSet is the one whose template equals the deployment's, ignoring the
    // pod-template-hash label (deployment/util `FindNewReplicaSet`, `EqualIgnoreHash`).
    let existing = owned
        .iter()
        .find(|r| equal_ignore_hash(&r["spec"]["template"], &d["spec"]["template"]));
    let new_name = existing
        .map(|r| meta::name(r).to_string())
        .unwrap_or_else(|| format!("{name}-{hash}"));
    let revision = |r: &Value| {
        r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let max_rev = owned.iter().map(|r| revision(r)).max().unwrap_or(0);
    let new_rs = owned
        .iter()
        .find(|r| meta::name(r) == new_name)
        .map(|r| (*r).clone());
    let old: Vec<&Value> = owned
        .iter()
        .filter(|r| meta::name(r) != new_name)
        .copied()
        .collect();
    let recreate = d["spec"]["strategy"]["type"] == "Recreate";
    let old_pods: i64 = old
        .iter()
        .map(|r| r["status"]["replicas"].as_i64().unwrap_or(0))
        .sum();
    let new_rs = match new_rs {
        Some(r) => r,
        None => {
            if recreate && old_pods > 0 {
                for r in &old {
                    scale(shared, r, 0);
                }
                return;
            }
            let mut template = d["spec"]["template"].clone();
            template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
            let mut selector = d["spec"]["selector"].clone();
            selector["matchLabels"]["pod-template-hash"] = json!(hash);
            let mut labels = d["spec"]["template"]["metadata"]["labels"].clone();
            labels["pod-template-hash"] = json!(hash);
            let rs = json!({
                "metadata": {"name": new_name, "namespace": ns, "labels": labels,
                    "annotations": {"deployment.kubernetes.io/revision": (max_rev + 1).to_string(), "deployment.kubernetes.io/desired-replicas": desired.to_string(), "deployment.kubernetes.io/max-replicas": desired.to_string()},
                    "ownerReferences": [meta::controller_ref_to(d)]},
                "spec": {"replicas": desired, "selector": selector, "template": template, "minReadySeconds": d["spec"]["minReadySeconds"].as_i64().unwrap_or(0)},
            });
            match shared.store.create(&rs_ri, ns, rs, false) {
                Ok(r) => r,
                Err(_) => return,
            }
        }
    };
    if revision(&new_rs) < max_rev && !old.is_empty() {
        // Rolling back to an older template makes it the newest revision again.
        let _ = shared
            .store
            .modify(&rs_ri, ns, meta::name(&new_rs), Part::Main, |r| {
                r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
                    json!((max_rev + 1).to_string());
                true
            });
    }
    if new_rs["spec"]["replicas"].as_i64() != Some(desired) && !(recreate && old_pods > 0) {
        scale(shared, &new_rs, desired);
    }
    let new_ready = new_rs["status"]["readyReplicas"].as_i64().unwrap_or(0);
    let mut old_left = (desired - new_ready).max(0);
    for r in &old {
        let want = if recreate {
            0
        } else {
            old_left.min(r["spec"]["replicas"].as_i64().unwrap_or(0))
        };
        old_left -= want;
        if r["spec"]["replicas"].as_i64() != Some(want) {
            scale(shared, r, want);
        }
    }
    let sum = |f: &str| {
        owned
            .iter()
            .map(|r| r["status"][f].as_i64().unwrap_or(0))
            .sum::<i64>()
    };
    let updated = new_rs["status"]["replicas"].as_i64().unwrap_or(0);
    let (replicas, ready, available) = (
        sum("replicas"),
        sum("readyReplicas"),
        sum("availableReplicas"),
    );
    let complete = updated == desired && replicas == desired && available == desired;
    let now = meta::now();
    let mut status = json!({
        "observedGeneration": d["metadata"]["generation"], "replicas": replicas, "updatedReplicas": updated,
        "readyReplicas": ready, "availableReplicas": available, "unavailableReplicas": (desired - available).max(0),
        "conditions": [
            {"type": "Available", "status": if available >= desired { "True" } else { "False" }, "reason": if available >= desired { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }, "message": if available >= desired { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." }, "lastUpdateTime": now, "lastTransitionTime": now},
            {"type": "Progressing", "status": "True", "reason": if complete { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" }, "message": if complete { format!("ReplicaSet \"{}\" has successfully progressed.", meta::name(&new_rs)) } else { format!("ReplicaSet \"{}\" is progressing.", meta::name(&new_rs)) }, "lastUpdateTime": now, "lastTransitionTime": now},
        ],
    });
    for k in [
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
        "updatedReplicas",
        "replicas",
    ] {
        if status[k] == json!(0) {
            status.as_object_mut().map(|m| m.remove(k));
        }
    }
    let _ = shared.store.modify(&deploy, ns, name, Part::Status, |o| {
        let same = strip_times(&o["status"]) == strip_times(&status);
        if !same {
            o["status"] = status;
        }
        !same
    });
}

fn equal_ignore_hash(a: &Value, b: &Value) -> bool {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(l) = t["metadata"]["labels"].as_object_mut() {
            l.remove("pod-template-hash");
        }
        t
    };
    strip(a) == strip(b)
}

/// Status without condition timestamps, to write only real changes.
pub fn strip_times(s: &Value) -> Value {
    let mut s = s.clone();
    if let Some(cs) = s["conditions"].as_array_mut() {
        for c in cs {
            if let Some(m) = c.as_object_mut() {
                m.remove("lastUpdateTime");
                m.remove("lastTransitionTime");
                m.remove("lastProbeTime");
            }
        }
    }
    s
}

fn scale(shared: &Shared, rs: &Value, n: i64) {
    if let Some(d) = meta::controller_ref(rs) {
        let from = rs["spec"]["replicas"].as_i64().unwrap_or(0);
        let verb = if n > from { "up" } else { "down" };
        let deploy = serde_json::json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": d["name"], "namespace": meta::namespace(rs), "uid": d["uid"]}});
        super::events::record(
            shared,
            &deploy,
            false,
            "ScalingReplicaSet",
            &format!(
                "Scaled {verb} replica set {} from {from} to {n}",
                meta::name(rs)
            ),
            "deployment-controller",
        );
    }
    let rs_ri = builtin("apps", "replicasets").expect("built in");
    let _ = shared.store.modify(
        &rs_ri,
        meta::namespace(rs),
        meta::name(rs),
        Part::Main,
        |r| {
            r["spec"]["replicas"] = json!(n);
            true
        },
    );
}

/// Creates a pod from a template, owned by `owner`.
pub fn create_pod(
    shared: &Shared,
    owner: &Value,
    template: &Value,
    name: Option<String>,
    generate: &str,
) -> Option<Value> {
    let pods_ri = builtin("", "pods").expect("built in");
    let mut md = template["metadata"].clone();
    if !md.is_object() {
        md = json!({});
    }
    match name {
        Some(n) => md["name"] = json!(n),
        None => md["generateName"] = json!(generate),
    }
    md["namespace"] = json!(meta::namespace(owner));
    md["ownerReferences"] = json!([meta::controller_ref_to(owner)]);
    let pod = json!({"metadata": md, "spec": template["spec"]});
    shared
        .store
        .create(&pods_ri, meta::namespace(owner), pod, false)
        .ok()
}

fn sync_replicaset(shared: &Shared, rs: &Value, pods: &[Value]) {
    let rs_ri = builtin("apps", "replicasets").expect("built in");
    let pods_ri = builtin("", "pods").expect("built in");
    let (ns, uid) = (meta::namespace(rs), meta::uid(rs));
    if super::adopt(shared, rs, pods, &pods_ri) {
        return;
    }
    let mine: Vec<&Value> = pods
        .iter()
        .filter(|p| {
            meta::namespace(p) == ns
                && meta::controller_ref(p).is_some_and(|o| o["uid"] == uid)
                && !pod_terminal(p)
        })
        .collect();
    let live: Vec<&Value> = mine
        .iter()
        .filter(|p| !meta::deleting(p))
        .copied()
        .collect();
    let desired = rs["spec"]["replicas"].as_i64().unwrap_or(1);
    let have = live.len() as i64;
    if have < desired {
        for _ in have..desired {
            if let Some(p) = create_pod(
                shared,
                rs,
                &rs["spec"]["template"],
                None,
                &format!("{}-", meta::name(rs)),
            ) {
                super::events::record(
                    shared,
                    rs,
                    false,
                    "SuccessfulCreate",
                    &format!("Created pod: {}", meta::name(&p)),
                    "replicaset-controller",
                );
            }
        }
    } else if have > desired {
        let mut victims = live.clone();
        victims.sort_by_key(|p| {
            (
                pod_ready(p),
                std::cmp::Reverse(
                    p["metadata"]["creationTimestamp"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ),
            )
        });
        for p in victims.iter().take((have - desired) as usize) {
            let _ = shared
                .store
                .delete(&pods_ri, ns, meta::name(p), &DeleteOptions::default());
        }
    }
    let ready = live.iter().filter(|p| pod_ready(p)).count() as i64;
    let mut status = json!({"replicas": live.len(), "fullyLabeledReplicas": live.len(), "readyReplicas": ready, "availableReplicas": ready, "observedGeneration": rs["metadata"]["generation"]});
    for k in ["readyReplicas", "availableReplicas", "fullyLabeledReplicas"] {
        if status[k] == json!(0) {
            status.as_object_mut().map(|m| m.remove(k));
        }
    }
    let _ = shared
        .store
        .modify(&rs_ri, ns, meta::name(rs), Part::Status, |o| {
            let same = o["status"] == status;
            o["status"] = status;
            !same
        });
}
