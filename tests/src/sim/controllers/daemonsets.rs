//! DaemonSets on the one node (pkg/controller/daemon): one pod per matching node, replaced when
//! the template changes (RollingUpdate) or left alone (OnDelete), and the status
//! `kubectl rollout status` reads.

use serde_json::{Value, json};

use super::deployments::create_pod;
use super::{pod_ready, pod_terminal, template_hash};
use crate::sim::resources::builtin;
use crate::sim::store::{DeleteOptions, Part};
use crate::sim::{NODE, Shared, meta};

/// One pass over daemon sets.
pub fn sync(shared: &Shared) {
    let ds_ri = builtin("apps", "daemonsets").expect("built in");
    let pods_ri = builtin("", "pods").expect("built in");
    let pods = shared.store.all(&pods_ri);
    for ds in shared
        .store
        .all(&ds_ri)
        .iter()
        .filter(|d| !meta::deleting(d))
    {
        if super::adopt(shared, ds, &pods, &pods_ri) {
            continue;
        }
        let (ns, uid) = (meta::namespace(ds), meta::uid(ds));
        let hash = template_hash(&ds["spec"]["template"]);
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
        let current =
            |p: &Value| p["metadata"]["labels"]["controller-revision-hash"] == json!(hash);
        if live.is_empty() && mine.is_empty() {
            let mut template = ds["spec"]["template"].clone();
            template["metadata"]["labels"]["controller-revision-hash"] = json!(hash);
            template["metadata"]["labels"]["pod-template-generation"] = json!(
                ds["metadata"]["generation"]
                    .as_i64()
                    .unwrap_or(1)
                    .to_string()
            );
            template["spec"]["nodeName"] = json!(NODE);
            if let Some(p) =
                create_pod(shared, ds, &template, None, &format!("{}-", meta::name(ds)))
            {
                super::events::record(
                    shared,
                    ds,
                    false,
                    "SuccessfulCreate",
                    &format!("Created pod: {}", meta::name(&p)),
                    "daemonset-controller",
                );
            }
        } else if ds["spec"]["updateStrategy"]["type"] != "OnDelete" {
            for p in live.iter().filter(|p| !current(p)) {
                let _ = shared
                    .store
                    .delete(&pods_ri, ns, meta::name(p), &DeleteOptions::default());
            }
        }
        let ready = live.iter().filter(|p| pod_ready(p)).count();
        let updated = live.iter().filter(|p| current(p)).count();
        let status = json!({
            "currentNumberScheduled": live.len(), "desiredNumberScheduled": 1, "numberMisscheduled": 0,
            "numberReady": ready, "numberAvailable": ready, "numberUnavailable": 1 - ready.min(1),
            "updatedNumberScheduled": updated, "observedGeneration": ds["metadata"]["generation"],
        });
        let _ = shared.store.modify(
            &builtin("apps", "daemonsets").expect("built in"),
            ns,
            meta::name(ds),
            Part::Status,
            |o| {
                let same = o["status"] == status;
                o["status"] = status;
                !same
            },
        );
    }
}
