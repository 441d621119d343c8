//! Schema scripts on the way: which ones the move crosses and who runs them, or that no chain
//! of scripts reaches the target.

use upgrade_shared::profile::Outcome;

use crate::context::Context;
use crate::finding::{Finding, Severity};
use crate::runbook::schema_chain;

pub(super) fn scripts(ctx: &Context<'_>, findings: &mut Vec<Finding>) {
    let Some(sql) = &ctx.profile.sql else { return };
    let (from, to) = (ctx.display(&ctx.from), ctx.display(&ctx.to));
    match schema_chain(ctx) {
        Some(Ok(files)) if !files.is_empty() => findings.push(Finding {
            severity: Severity::Info,
            component: sql.component.clone(),
            code: "schema-scripts".into(),
            message: format!(
                "{from} → {to} crosses {} schema script{}, run in order by {}: {}",
                files.len(),
                if files.len() > 1 { "s" } else { "" },
                sql.applied_by
                    .as_deref()
                    .unwrap_or("the runbook (kubectl upgrade-migrate-db apply)"),
                files.join(", ")
            ),
            remediation: "none needed; the backup taken first is the way back".into(),
            evidence: files,
            impact: Outcome::Safe,
        }),
        Some(Err(())) => findings.push(Finding {
            severity: Severity::Critical,
            component: sql.component.clone(),
            code: "schema-chain-missing".into(),
            message: format!(
                "schema scripts lie between {from} and {to}, but no chain of them starts at {from}"
            ),
            remediation: format!(
                "upgrade first to a version a script starts from (see sql/{}/)",
                sql.dir
            ),
            evidence: Vec::new(),
            impact: Outcome::NeedsSteps,
        }),
        _ => {}
    }
}
