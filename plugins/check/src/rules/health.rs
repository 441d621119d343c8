//! The application's health before the upgrade: components not ready or crash-looping, budgets
//! that would refuse the restarts an upgrade needs, and process groups an operator flags.

use serde_json::Value;
use upgrade_shared::names::selector_matches;
use upgrade_shared::profile::Outcome;

use crate::context::Context;
use crate::finding::{Finding, Severity};
use crate::runbook::Plan;

/// Restarts at or above this count, with the container waiting in CrashLoopBackOff, mark a
/// crash loop (the kubelet's back-off starts after the first failed restarts).
const CRASH_LOOP_RESTARTS: i32 = 3;

pub(super) fn readiness(ctx: &Context<'_>, findings: &mut Vec<Finding>, plan: &mut Plan) {
    for c in ctx.profile.components.iter().filter(|c| c.required) {
        let ns = ctx.namespace_of(c);
        for w in ctx.workloads_of(c) {
            if w.desired > 0 && w.ready < w.desired {
                findings.push(Finding {
                    severity: Severity::Warning,
                    component: c.name.clone(),
                    code: "not-ready".into(),
                    message: format!(
                        "{} has {}/{} replicas ready",
                        w.reference(),
                        w.ready,
                        w.desired
                    ),
                    remediation: format!(
                        "find out why before upgrading: kubectl describe {} -n {ns}",
                        w.reference()
                    ),
                    evidence: vec![w.reference()],
                    impact: Outcome::NeedsSteps,
                });
                Plan::push(
                    &mut plan.prepare,
                    format!(
                        "Wait until {} is ready again before changing anything",
                        w.reference()
                    ),
                    format!(
                        "kubectl rollout status {} -n {ns} --timeout=10m",
                        w.reference()
                    ),
                );
            }
        }
        for pod in ctx.pods_of(c) {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let statuses = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref());
            for status in statuses.into_iter().flatten() {
                let waiting = status
                    .state
                    .as_ref()
                    .and_then(|s| s.waiting.as_ref())
                    .and_then(|w| w.reason.as_deref());
                if waiting == Some("CrashLoopBackOff")
                    || (status.restart_count >= CRASH_LOOP_RESTARTS && !status.ready)
                {
                    findings.push(Finding {
                        severity: Severity::Critical,
                        component: c.name.clone(),
                        code: "crash-looping".into(),
                        message: format!(
                            "container {} of pod/{name} is crash-looping ({} restarts)",
                            status.name, status.restart_count
                        ),
                        remediation: format!("read its logs and fix it first: kubectl logs pod/{name} -c {} -n {ns} --previous", status.name),
                        evidence: vec![format!("pod/{name}")],
                        impact: Outcome::NeedsSteps,
                    });
                }
            }
        }
    }
}

pub(super) fn disruption_budgets(ctx: &Context<'_>, findings: &mut Vec<Finding>, plan: &mut Plan) {
    for pdb in &ctx.snapshot.pdbs {
        let name = pdb.metadata.name.clone().unwrap_or_default();
        let ns = pdb
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| ctx.snapshot.namespace.clone());
        let Some(status) = &pdb.status else { continue };
        if status.disruptions_allowed > 0 || status.expected_pods == 0 {
            continue;
        }
        let selector = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
        let covered: Vec<String> = ctx
            .profile
            .components
            .iter()
            .filter(|c| {
                ctx.pods_of(c).iter().any(|p| {
                    selector
                        .is_some_and(|sel| label_selector_matches(sel, p.metadata.labels.as_ref()))
                })
            })
            .map(|c| c.name.clone())
            .collect();
        if covered.is_empty() {
            continue;
        }
        findings.push(Finding {
            severity: Severity::Warning,
            component: covered.join(","),
            code: "pdb-blocks-restarts".into(),
            message: format!("pdb/{name} allows no disruptions now: evictions during the upgrade would be refused (429)"),
            remediation: "let the budget allow one disruption for the upgrade, or bring the covered pods back to healthy first".into(),
            evidence: vec![format!("pdb/{name}")],
            impact: Outcome::NeedsSteps,
        });
        Plan::push(
            &mut plan.prepare,
            format!(
                "Check why pdb/{name} allows no disruptions; the upgrade's restarts need at least one"
            ),
            format!("kubectl get pdb {name} -n {ns} -o wide"),
        );
    }
}

/// Matches a `metav1.LabelSelector` (matchLabels and matchExpressions).
fn label_selector_matches(
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> bool {
    use upgrade_shared::names::Requirement;
    let mut reqs: Vec<Requirement> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| Requirement::Equals(k.clone(), v.clone()))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default();
        reqs.push(match e.operator.as_str() {
            "In" => Requirement::In(e.key.clone(), values),
            "NotIn" => Requirement::NotIn(e.key.clone(), values),
            "Exists" => Requirement::Exists(e.key.clone()),
            "DoesNotExist" => Requirement::NotExists(e.key.clone()),
            _ => return false,
        });
    }
    selector_matches(&reqs, labels)
}

/// Operators that keep per-process state in the custom resource (the FoundationDB operator's
/// `status.processGroups[].processGroupConditions`) say which processes are already in trouble.
pub(super) fn process_groups(ctx: &Context<'_>, findings: &mut Vec<Finding>) {
    for object in &ctx.snapshot.custom {
        let Some(groups) = object
            .pointer("/status/processGroups")
            .and_then(Value::as_array)
        else {
            continue;
        };
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let mut evidence = Vec::new();
        for group in groups {
            let id = group["processGroupID"].as_str().unwrap_or_default();
            for condition in group["processGroupConditions"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(t) = condition["type"].as_str() {
                    evidence.push(format!("{id}: {t}"));
                }
            }
        }
        if evidence.is_empty() {
            continue;
        }
        findings.push(Finding {
            severity: Severity::Warning,
            component: ctx.profile.name.clone(),
            code: "process-group-conditions".into(),
            message: format!("{kind} {name} has {} process group condition{}: an incompatible upgrade waits for every process", evidence.len(), if evidence.len() > 1 { "s" } else { "" }),
            remediation: "resolve or replace the affected process groups before changing the version".into(),
            evidence,
            impact: Outcome::NeedsSteps,
        });
    }
}
