//! The rules of the check. Each looks at one kind of risk and adds findings and the steps that
//! take the risk away; none of them talks to a cluster.

pub mod clients;
mod health;
mod images;
mod manifests;
mod progress;
mod schema;
mod volumes;

pub use manifests::target_file;

use crate::context::Context;
use crate::finding::Finding;
use crate::runbook::Plan;

/// Runs every rule in the order their steps should appear. At the target version only what
/// says the upgrade is not finished applies: an operator still working, data left behind.
pub fn apply_all(ctx: &Context<'_>, findings: &mut Vec<Finding>, plan: &mut Plan) {
    progress::in_progress(ctx, findings);
    volumes::left_behind(ctx, findings, plan);
    if ctx.at_target() {
        return;
    }
    health::readiness(ctx, findings, plan);
    health::disruption_budgets(ctx, findings, plan);
    health::process_groups(ctx, findings);
    clients::compatibility(ctx, findings);
    images::pinned_images(ctx, findings);
    volumes::claims(ctx, findings, plan);
    manifests::immutable_statefulset_fields(ctx, findings, plan);
    schema::scripts(ctx, findings);
}
