//! Saying why: a pod that did not become Ready (phase, each container's state, restarts, the
//! pod's latest events) and the disruption budget behind a refused eviction.

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::ListParams;
use upgrade_shared::cluster::Cluster;
use upgrade_shared::list::{list_all, list_matching};

/// One line about a pod's state: phase, then each container not ready with its reason.
pub fn state(pod: &Pod) -> String {
    let status = pod.status.clone().unwrap_or_default();
    let mut parts = vec![format!(
        "phase {}",
        status.phase.as_deref().unwrap_or("Unknown")
    )];
    for cs in status.container_statuses.iter().flatten() {
        if cs.ready {
            continue;
        }
        let st = cs.state.clone().unwrap_or_default();
        let now = if let Some(w) = st.waiting {
            let msg = w.message.map(|m| format!(" ({m})")).unwrap_or_default();
            format!("waiting: {}{msg}", w.reason.unwrap_or_default())
        } else if let Some(t) = st.terminated {
            format!(
                "terminated: {} exit code {}",
                t.reason.unwrap_or_default(),
                t.exit_code
            )
        } else {
            "running, not ready".to_string()
        };
        parts.push(format!(
            "container {} {now}, {} restart(s)",
            cs.name, cs.restart_count
        ));
    }
    if status
        .container_statuses
        .as_ref()
        .is_none_or(|c| c.is_empty())
        && let Some(c) = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "PodScheduled" && c.status != "True")
    {
        parts.push(format!(
            "not scheduled: {}",
            c.message.clone().unwrap_or_default()
        ));
    }
    parts.join(", ")
}

/// Events of one pod, oldest first, as `Type Reason: message`.
pub fn event_lines(events: &[Event], pod: &str, uid: Option<&str>) -> Vec<String> {
    let mut mine: Vec<&Event> = events
        .iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(pod))
        .filter(|e| e.involved_object.kind.as_deref().is_none_or(|k| k == "Pod"))
        .filter(|e| uid.is_none_or(|u| e.involved_object.uid.as_deref().is_none_or(|x| x == u)))
        .collect();
    mine.sort_by_key(|e| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or(e.event_time.as_ref().map(|t| t.0))
    });
    mine.iter()
        .rev()
        .take(8)
        .rev()
        .map(|e| {
            format!(
                "{} {}: {}",
                e.type_.as_deref().unwrap_or("Normal"),
                e.reason.as_deref().unwrap_or(""),
                e.message.as_deref().unwrap_or("").trim()
            )
        })
        .collect()
}

/// Why a pod is not Ready, with its events.
pub async fn not_ready(cluster: &Cluster, name: &str, pod: Option<&Pod>) -> String {
    let Some(pod) = pod else {
        return format!("pod/{name} is gone");
    };
    let events = list_all(cluster.api::<Event>(), "events", &cluster.namespace)
        .await
        .unwrap_or_default();
    let lines = event_lines(&events, name, pod.metadata.uid.as_deref());
    let events = if lines.is_empty() {
        "no events".to_string()
    } else {
        format!("events: {}", lines.join(" | "))
    };
    format!("pod/{name} did not become Ready: {}; {events}", state(pod))
}

/// The budgets covering a pod, as text to append to a refusal (empty when none is found).
pub async fn budget_for(cluster: &Cluster, pod: &str) -> String {
    let Ok(Some(p)) = cluster.pod(pod).await else {
        return String::new();
    };
    let labels = p.metadata.labels.unwrap_or_default();
    let Ok(pdbs) = list_matching(
        cluster.api::<PodDisruptionBudget>(),
        ListParams::default(),
        "poddisruptionbudgets",
        &cluster.namespace,
    )
    .await
    else {
        return String::new();
    };
    let mut out = Vec::new();
    for b in pdbs {
        let Some(sel) = b.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
            continue;
        };
        if !selector_matches(sel, &labels) {
            continue;
        }
        let spec = b.spec.clone().unwrap_or_default();
        let st = b.status.clone().unwrap_or_default();
        let rule = match (&spec.min_available, &spec.max_unavailable) {
            (Some(m), _) => format!("minAvailable {}", int_or_string(m)),
            (None, Some(m)) => format!("maxUnavailable {}", int_or_string(m)),
            _ => "no minimum".into(),
        };
        out.push(format!(
            "poddisruptionbudget/{} ({rule}): {} of {} pods healthy, {} needed, {} disruption(s) allowed",
            b.metadata.name.unwrap_or_default(),
            st.current_healthy,
            st.expected_pods,
            st.desired_healthy,
            st.disruptions_allowed
        ));
    }
    if out.is_empty() {
        String::new()
    } else {
        format!("; {}", out.join("; "))
    }
}

fn int_or_string(v: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString) -> String {
    match v {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => i.to_string(),
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
    }
}

/// A `metav1.LabelSelector` against labels (matchLabels and matchExpressions).
pub fn selector_matches(
    sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    let by_labels = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expr = sel.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        let got = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => got.is_some_and(|g| values.contains(g)),
            "NotIn" => got.is_none_or(|g| !values.contains(g)),
            "Exists" => got.is_some(),
            "DoesNotExist" => got.is_none(),
            _ => false,
        }
    });
    by_labels && by_expr
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_crash_looping_pod_is_described_with_its_events() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "db-0", "uid": "u"},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "db", "image": "", "imageID": "", "ready": false, "restartCount": 3,
                 "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s restarting failed container"}}}
            ]}
        }))
        .unwrap();
        assert_eq!(
            state(&pod),
            "phase Running, container db waiting: CrashLoopBackOff (back-off 20s restarting failed container), 3 restart(s)"
        );
        let events: Vec<Event> = serde_json::from_value(serde_json::json!([
            {"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "db-0", "uid": "u"}, "type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container", "lastTimestamp": "2024-01-01T00:00:02Z"},
            {"metadata": {"name": "e0"}, "involvedObject": {"kind": "Pod", "name": "db-0", "uid": "u"}, "type": "Normal", "reason": "Started", "message": "Started container db", "lastTimestamp": "2024-01-01T00:00:01Z"},
            {"metadata": {"name": "e2"}, "involvedObject": {"kind": "Pod", "name": "db-0", "uid": "old"}, "type": "Normal", "reason": "Killing", "message": "x", "lastTimestamp": "2024-01-01T00:00:00Z"},
            {"metadata": {"name": "e3"}, "involvedObject": {"kind": "Pod", "name": "db-1"}, "type": "Normal", "reason": "Started", "message": "y"}
        ]))
        .unwrap();
        assert_eq!(
            event_lines(&events, "db-0", Some("u")),
            [
                "Normal Started: Started container db",
                "Warning BackOff: Back-off restarting failed container"
            ]
        );
    }

    #[test]
    fn budget_selectors_match_like_the_api_server() {
        let sel: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
            serde_json::from_value(serde_json::json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]})).unwrap();
        let labels = [
            ("app".to_string(), "web".to_string()),
            ("tier".to_string(), "a".to_string()),
        ]
        .into();
        assert!(selector_matches(&sel, &labels));
        let other = [("app".to_string(), "web".to_string())].into();
        assert!(!selector_matches(&sel, &other));
    }
}
