//! PodDisruptionBudget status (pkg/controller/disruption): healthy pods against
//! `minAvailable`/`maxUnavailable`, and how many disruptions are allowed now.

use serde_json::{Value, json};

use super::{pod_ready, pod_terminal};
use crate::sim::resources::builtin;
use crate::sim::selectors::LabelSelector;
use crate::sim::store::Part;
use crate::sim::{Shared, meta};

fn resolve(v: &Value, total: i64, round_up: bool) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) if s.ends_with('%') => {
            let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
            let x = pct * total as f64 / 100.0;
            (if round_up { x.ceil() } else { x.floor() }) as i64
        }
        Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// One pass.
pub fn sync(shared: &Shared) {
    let pdb_ri = builtin("policy", "poddisruptionbudgets").expect("built in");
    let pods = shared.store.all(&builtin("", "pods").expect("built in"));
    for pdb in shared.store.all(&pdb_ri) {
        let ns = meta::namespace(&pdb);
        let Some(sel) = LabelSelector::from_object(&pdb["spec"]["selector"]) else {
            continue;
        };
        let disrupted = pdb["status"]["disruptedPods"].clone();
        let matching: Vec<&Value> = pods
            .iter()
            .filter(|p| {
                meta::namespace(p) == ns
                    && !pod_terminal(p)
                    && sel.matches(&p["metadata"]["labels"])
            })
            .collect();
        let expected = matching.len() as i64;
        // buildDisruptedPodMap: an entry stays while its pod exists and is not yet being
        // deleted, for at most DeletionTimeout (2 minutes) after the eviction; a pod already
        // terminating has been disrupted and no longer needs the entry.
        let now = jiff::Timestamp::now();
        let still: serde_json::Map<String, Value> = disrupted
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| {
                        matching
                            .iter()
                            .any(|p| meta::name(p) == *k && !meta::deleting(p))
                    })
                    .filter(|(_, at)| {
                        at.as_str()
                            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                            .is_none_or(|t| now.duration_since(t).as_secs() < 120)
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let healthy = matching
            .iter()
            .filter(|p| pod_ready(p) && !meta::deleting(p) && still.get(meta::name(p)).is_none())
            .count() as i64;
        let desired = if !pdb["spec"]["minAvailable"].is_null() {
            resolve(&pdb["spec"]["minAvailable"], expected, true)
        } else if !pdb["spec"]["maxUnavailable"].is_null() {
            (expected - resolve(&pdb["spec"]["maxUnavailable"], expected, true)).max(0)
        } else {
            expected
        };
        let allowed = (healthy - desired).max(0);
        let mut status = json!({
            "observedGeneration": pdb["metadata"]["generation"], "expectedPods": expected, "currentHealthy": healthy, "desiredHealthy": desired, "disruptionsAllowed": allowed,
            "conditions": [{"type": "DisruptionAllowed", "status": if allowed > 0 { "True" } else { "False" }, "reason": if allowed > 0 { "SufficientPods" } else { "InsufficientPods" }, "message": "", "observedGeneration": pdb["metadata"]["generation"], "lastTransitionTime": pdb["status"]["conditions"][0]["lastTransitionTime"].as_str().map(String::from).unwrap_or_else(meta::now)}],
        });
        if !still.is_empty() {
            status["disruptedPods"] = json!(still);
        }
        let _ = shared
            .store
            .modify(&pdb_ri, ns, meta::name(&pdb), Part::Status, |o| {
                let same = o["status"] == status;
                o["status"] = status;
                !same
            });
    }
}
