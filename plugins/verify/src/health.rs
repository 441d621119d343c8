//! Health of the custom resources an operator reports through: which fields are recorded and
//! what counts as healthy after an upgrade. From the applications' own guides:
//! - FoundationDBCluster (fdb-kubernetes-operator upgrade docs): the upgrade is done when the
//!   cluster's reconciliation is done — `status.generations.reconciled` reaches
//!   `metadata.generation` — with `status.runningVersion` equal to `spec.version` and the
//!   database available (`status.health.available`);
//! - RokCluster (Rok's v1 → v2 guide, "Verify successful upgrade"): `kubectl get rokcluster`
//!   shows VERSION v2, HEALTH OK, all members ready, PHASE Running;
//! - any other kind: conditions `Ready` and `Available` that were `True` stay `True`.

use std::collections::BTreeMap;

use serde_json::Value;
use upgrade_shared::profile::field;
use upgrade_shared::version::Version;

/// One unhealthy field: what it holds and what it should.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted field (`status.health.available`).
    pub field: String,
    /// What a healthy resource holds there.
    pub expected: String,
    /// What it holds now (`<none>` when absent).
    pub now: String,
}

const FDB: &[&str] = &[
    "metadata.generation",
    "spec.version",
    "status.runningVersion",
    "status.generations.reconciled",
    "status.health.available",
    "status.health.healthy",
    "status.health.fullReplication",
];

const ROK: &[&str] = &[
    "status.version",
    "status.health",
    "status.phase",
    "status.members",
    "status.readyMembers",
];

/// The fields recorded for a kind.
pub fn fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "FoundationDBCluster" => FDB,
        "RokCluster" => ROK,
        _ => &[],
    }
}

/// The fields of `object` worth recording: the kind's own, and `Ready`/`Available` conditions
/// (as `status.conditions.<type>`).
pub fn record(object: &Value) -> BTreeMap<String, Value> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let mut out: BTreeMap<String, Value> = fields(kind)
        .iter()
        .filter_map(|f| field(object, f).map(|v| (f.to_string(), v.clone())))
        .collect();
    for c in object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(t @ ("Ready" | "Available")), Some(s)) =
            (c["type"].as_str(), c["status"].as_str())
        {
            out.insert(format!("status.conditions.{t}"), s.into());
        }
    }
    out
}

fn show(v: Option<&Value>) -> String {
    match v {
        None => "<none>".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn version_reaches(text: Option<&Value>, to: &Version) -> bool {
    text.and_then(Value::as_str)
        .and_then(|t| Version::parse(t).ok())
        .is_some_and(|v| to.covers(&v))
}

/// Why `object` is not healthy now, given what was recorded of it and the target version.
pub fn problems(
    object: &Value,
    recorded: &BTreeMap<String, Value>,
    to: Option<&Version>,
) -> Vec<Problem> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let get = |f: &str| field(object, f);
    let mut out = Vec::new();
    let mut want = |f: &str, expected: String, ok: bool| {
        if !ok {
            out.push(Problem {
                field: f.into(),
                expected,
                now: show(get(f)),
            });
        }
    };
    match kind {
        "FoundationDBCluster" => {
            want(
                "status.health.available",
                "true".into(),
                get("status.health.available") == Some(&Value::Bool(true)),
            );
            let spec_version = get("spec.version");
            want(
                "status.runningVersion",
                show(spec_version),
                get("status.runningVersion").is_some()
                    && get("status.runningVersion") == spec_version,
            );
            let generation = get("metadata.generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let reconciled = get("status.generations.reconciled").and_then(Value::as_i64);
            want(
                "status.generations.reconciled",
                generation.to_string(),
                reconciled.is_some_and(|r| r >= generation),
            );
            if let Some(to) = to {
                want(
                    "status.runningVersion",
                    to.raw.clone(),
                    version_reaches(get("status.runningVersion"), to),
                );
            }
        }
        "RokCluster" => {
            want(
                "status.health",
                "OK".into(),
                get("status.health").and_then(Value::as_str) == Some("OK"),
            );
            want(
                "status.phase",
                "Running".into(),
                get("status.phase").and_then(Value::as_str) == Some("Running"),
            );
            let members = get("status.members").and_then(Value::as_i64);
            let ready = get("status.readyMembers").and_then(Value::as_i64);
            if let Some(m) = members {
                want(
                    "status.readyMembers",
                    m.to_string(),
                    ready.is_some_and(|r| r >= m),
                );
            }
            if let Some(to) = to {
                want(
                    "status.version",
                    to.raw.clone(),
                    version_reaches(get("status.version"), to),
                );
            }
        }
        _ => {}
    }
    // Whatever kind: a flag or condition that was healthy at record time stays healthy.
    let now = record(object);
    for (f, before) in recorded {
        let healthy_before = before == &Value::Bool(true) || before.as_str() == Some("True");
        if !healthy_before || out.iter().any(|p| &p.field == f) {
            continue;
        }
        if now.get(f) != Some(before) {
            out.push(Problem {
                field: f.clone(),
                expected: show(Some(before)),
                now: show(now.get(f)),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fdb(running: &str, available: bool, reconciled: i64) -> Value {
        json!({"apiVersion": "apps.foundationdb.org/v1beta2", "kind": "FoundationDBCluster",
               "metadata": {"name": "sample", "generation": 2},
               "spec": {"version": "7.1.40"},
               "status": {"runningVersion": running, "generations": {"reconciled": reconciled},
                          "health": {"available": available, "healthy": true}}})
    }

    #[test]
    fn a_reconciled_available_cluster_on_the_target_is_healthy() {
        let to = Version::parse("7.1.40").expect("version");
        let obj = fdb("7.1.40", true, 2);
        assert_eq!(problems(&obj, &record(&obj), Some(&to)), vec![]);
    }

    #[test]
    fn fdb_reconciliation_not_done_and_unavailable_are_named() {
        let to = Version::parse("7.1.40").expect("version");
        let before = record(&fdb("7.1.33", true, 1));
        let found = problems(&fdb("7.1.33", false, 1), &before, Some(&to));
        let fields: Vec<&str> = found.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "status.health.available",
                "status.runningVersion",
                "status.generations.reconciled",
                "status.runningVersion"
            ]
        );
        assert_eq!(found[0].now, "false");
        assert_eq!(found[1].expected, "7.1.40");
        assert_eq!(found[1].now, "7.1.33");
    }

    #[test]
    fn rok_must_report_ok_running_and_the_target_version() {
        let rok = |health: &str, version: &str| {
            json!({"apiVersion": "crd.arrikto.com/v1", "kind": "RokCluster", "metadata": {"name": "rok"},
                   "status": {"version": version, "health": health, "phase": "Running", "members": 1, "readyMembers": 1}})
        };
        let to = Version::parse("v2").expect("version");
        assert_eq!(
            problems(&rok("OK", "v2.0.1"), &BTreeMap::new(), Some(&to)),
            vec![]
        );
        let found = problems(&rok("Degraded", "v1.5.3"), &BTreeMap::new(), Some(&to));
        assert_eq!(
            found,
            vec![
                Problem {
                    field: "status.health".into(),
                    expected: "OK".into(),
                    now: "Degraded".into()
                },
                Problem {
                    field: "status.version".into(),
                    expected: "v2".into(),
                    now: "v1.5.3".into()
                },
            ]
        );
    }

    #[test]
    fn other_kinds_keep_their_ready_condition() {
        let obj = |s: &str| json!({"kind": "Widget", "status": {"conditions": [{"type": "Ready", "status": s}]}});
        let before = record(&obj("True"));
        assert_eq!(problems(&obj("True"), &before, None), vec![]);
        assert_eq!(
            problems(&obj("False"), &before, None)[0].field,
            "status.conditions.Ready"
        );
    }
}
