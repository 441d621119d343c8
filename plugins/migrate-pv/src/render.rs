//! Plans and status as people read them; JSON and YAML come from the same structures.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PersistentVolume;
use serde::Serialize;
use upgrade_shared::output::{Styles, table};

use crate::journal::Entry;
use crate::plan::{Action, ORIGINAL_POLICY, Plan, policy};

/// The plan, numbered, destructive steps marked.
pub fn plan(plan: &Plan, styles: &Styles) -> String {
    let mut out = format!(
        "{} {} in namespace {}\n",
        styles.heading("Plan:"),
        plan.command,
        plan.namespace
    );
    for d in &plan.done {
        out.push_str(&format!("  {} {d}\n", styles.dim("already done:")));
    }
    if plan.steps.is_empty() {
        out.push_str(&format!("  {}\n", styles.good("nothing to do")));
    }
    steps_and_warnings(&mut out, plan, styles);
    out
}

/// A plan's steps, numbered and the destructive ones marked, then its warnings.
pub fn steps_and_warnings(out: &mut String, plan: &Plan, styles: &Styles) {
    for (i, step) in plan.steps.iter().enumerate() {
        let mark = if step.destructive() {
            styles.warn(" (destructive)")
        } else {
            String::new()
        };
        out.push_str(&format!("{:>3}. {}{mark}\n", i + 1, step.describe()));
    }
    for w in &plan.warnings {
        out.push_str(&format!("{} {w}\n", styles.warn("warning:")));
    }
}

/// One step of a plan and what became of it, for `-o json|yaml`.
#[derive(Debug, Serialize)]
pub struct StepOutcome<'a> {
    #[serde(flatten)]
    pub step: &'a Action,
    pub description: String,
    /// `planned` (a dry run) or `done`.
    pub outcome: &'static str,
}

/// A plan with each step's outcome: what a mutating command prints with `-o json|yaml`, once,
/// at the end — so a script reads what was done, not only what was meant.
#[derive(Debug, Serialize)]
pub struct Outcome<'a> {
    pub command: &'a str,
    pub namespace: &'a str,
    pub dry_run: bool,
    pub steps: Vec<StepOutcome<'a>>,
    /// Things that were already as wanted.
    pub done: &'a [String],
    pub warnings: &'a [String],
}

impl<'a> Outcome<'a> {
    /// Every step of `plan` with the same outcome.
    pub fn of(plan: &'a Plan, outcome: &'static str, dry_run: bool) -> Outcome<'a> {
        Outcome {
            command: &plan.command,
            namespace: &plan.namespace,
            dry_run,
            steps: plan
                .steps
                .iter()
                .map(|step| StepOutcome {
                    step,
                    description: step.describe(),
                    outcome,
                })
                .collect(),
            done: &plan.done,
            warnings: &plan.warnings,
        }
    }
}

/// What `status` shows.
#[derive(Debug, Serialize)]
pub struct Status {
    pub namespace: String,
    pub operations: Vec<Operation>,
    pub volumes: Vec<VolumeStatus>,
}

/// One journal entry.
#[derive(Debug, Serialize)]
pub struct Operation {
    pub operation: String,
    pub claims: String,
    pub volume: String,
    pub state: String,
    pub next: String,
}

/// A volume whose policy the suite changed.
#[derive(Debug, Serialize)]
pub struct VolumeStatus {
    pub volume: String,
    pub claim: String,
    pub phase: String,
    pub policy: String,
    pub original: String,
}

impl Status {
    /// `stale` holds, by journal key, why a recorded result no longer holds live.
    pub fn build(
        namespace: &str,
        entries: &BTreeMap<String, Entry>,
        volumes: &[PersistentVolume],
        stale: &BTreeMap<String, String>,
    ) -> Status {
        let operations = entries
            .iter()
            .map(|(key, e)| match e {
                Entry::Adopt { record, state, .. } => {
                    // The policy is still to be put back while the volume carries its original.
                    let policy_left = volumes.iter().any(|v| v.metadata.name.as_deref() == Some(record.volume.as_str()));
                    Operation {
                        operation: "adopt".into(),
                        claims: format!("{} → {}", record.old_claim, record.new_claim),
                        volume: record.volume.clone(),
                        state: state.clone(),
                        next: match state.as_str() {
                            "started" => format!("kubectl upgrade-migrate-pv adopt {} {} -n {namespace}", record.old_claim, record.new_claim),
                            "done" if policy_left => format!("after the upgrade: kubectl upgrade-migrate-pv restore-policy {} -n {namespace}", record.new_claim),
                            _ => "-".into(),
                        },
                    }
                }
                Entry::Copy { source, dest, dest_namespace, state, .. } => {
                    let to = match dest_namespace.as_deref() {
                        Some(ns) if ns != namespace => format!(" --to-namespace {ns}"),
                        _ => String::new(),
                    };
                    // --create only creates DEST when it is missing, so the hint always holds.
                    let copy_again = format!("kubectl upgrade-migrate-pv copy {source} {dest} -n {namespace}{to} --create");
                    let claims = match dest_namespace.as_deref() {
                        Some(ns) if ns != namespace => format!("{source} → {ns}/{dest}"),
                        _ => format!("{source} → {dest}"),
                    };
                    match stale.get(key) {
                        Some(problem) => Operation {
                            operation: "copy".into(),
                            claims,
                            volume: "-".into(),
                            state: format!("stale: {problem}"),
                            next: copy_again,
                        },
                        None => Operation {
                            operation: "copy".into(),
                            claims,
                            volume: "-".into(),
                            state: state.clone(),
                            next: if state == "verified" { format!("kubectl upgrade-migrate-pv cleanup {source} -n {namespace}") } else { copy_again },
                        },
                    }
                }
            })
            .collect();
        let volumes = volumes
            .iter()
            .map(|v| VolumeStatus {
                volume: v.metadata.name.clone().unwrap_or_default(),
                claim: v
                    .spec
                    .as_ref()
                    .and_then(|s| s.claim_ref.as_ref())
                    .and_then(|r| r.name.clone())
                    .unwrap_or_default(),
                phase: v
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_default(),
                policy: policy(v),
                original: v
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(ORIGINAL_POLICY).cloned())
                    .unwrap_or_default(),
            })
            .collect();
        Status {
            namespace: namespace.into(),
            operations,
            volumes,
        }
    }
}

/// The status as two tables.
pub fn status(status: &Status, styles: &Styles) -> String {
    let mut out = String::new();
    if status.operations.is_empty() && status.volumes.is_empty() {
        return format!("Nothing recorded in namespace {}.\n", status.namespace);
    }
    if !status.operations.is_empty() {
        let rows: Vec<Vec<String>> = status
            .operations
            .iter()
            .map(|o| {
                vec![
                    o.operation.clone(),
                    o.claims.clone(),
                    o.volume.clone(),
                    o.state.clone(),
                    o.next.clone(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["operation", "claims", "volume", "state", "next"],
            &rows,
            |_, c| c.to_string(),
        ));
    }
    if !status.volumes.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = status
            .volumes
            .iter()
            .map(|v| {
                vec![
                    v.volume.clone(),
                    v.claim.clone(),
                    v.phase.clone(),
                    v.policy.clone(),
                    v.original.clone(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["volume", "claim", "phase", "policy", "original policy"],
            &rows,
            |col, c| {
                if col == 3 && c == "Retain" {
                    styles.warn(c)
                } else {
                    c.to_string()
                }
            },
        ));
    }
    out
}
