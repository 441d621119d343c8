//! An upgrade already under way: an operator that has not yet reached what its custom resource
//! asks for (the FoundationDB operator's `spec.version` against `status.runningVersion`, or a
//! spec generation it has not reconciled). Checking, or starting another upgrade, on top of
//! one in flight reads a state that is about to change.

use serde_json::Value;
use upgrade_shared::profile::{Outcome, field};

use crate::context::Context;
use crate::finding::{Finding, Severity};

pub(super) fn in_progress(ctx: &Context<'_>, findings: &mut Vec<Finding>) {
    for rule in &ctx.profile.upgrade_progress {
        for object in ctx
            .snapshot
            .custom
            .iter()
            .filter(|o| o["apiVersion"] == *rule.api_version && o["kind"] == *rule.kind)
        {
            let name = object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let text = |path: &str| {
                field(object, path)
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            };
            let mut evidence = Vec::new();
            if let (Some(want), Some(have)) = (text(&rule.desired), text(&rule.running))
                && want != have
            {
                evidence.push(format!("{} {want}, {} {have}", rule.desired, rule.running));
            }
            if let Some(path) = &rule.reconciled_generation
                && let (Some(generation), Some(reconciled)) = (
                    object
                        .pointer("/metadata/generation")
                        .and_then(Value::as_i64),
                    field(object, path).and_then(Value::as_i64),
                )
                && generation != reconciled
            {
                evidence.push(format!("generation {generation}, {path} {reconciled}"));
            }
            if evidence.is_empty() {
                continue;
            }
            findings.push(Finding {
                severity: Severity::Warning,
                component: ctx.profile.name.clone(),
                code: "upgrade-in-progress".into(),
                message: format!(
                    "{} {name} is being changed by its operator ({}): an upgrade is in progress",
                    rule.kind,
                    evidence.join("; ")
                ),
                remediation: format!(
                    "let it finish and check again: kubectl upgrade-verify wait -n {} --profile {} --to {} --timeout 30m",
                    ctx.snapshot.namespace,
                    ctx.profile.name,
                    text(&rule.desired).unwrap_or_else(|| ctx.display(&ctx.to))
                ),
                evidence: evidence
                    .into_iter()
                    .map(|e| format!("{}/{name} {e}", rule.kind.to_lowercase()))
                    .collect(),
                impact: Outcome::NeedsSteps,
            });
        }
    }
}
