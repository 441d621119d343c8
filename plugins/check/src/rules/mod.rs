//! The rules of the check. Each looks at one kind of risk and adds findings and the steps that
//! take the risk away; none of them talks to a cluster.

mod health;
mod images;
mod manifests;
mod schema;
mod volumes;

use crate::context::Context;
use crate::finding::Finding;
use crate::runbook::Plan;

/// Runs every rule in the order their steps should appear.
pub fn apply_all(ctx: &Context<'_>, findings: &mut Vec<Finding>, plan: &mut Plan) {
    health::readiness(ctx, findings, plan);
    health::disruption_budgets(ctx, findings, plan);
    health::process_groups(ctx, findings);
    images::pinned_images(ctx, findings);
    volumes::claims(ctx, findings, plan);
    manifests::immutable_statefulset_fields(ctx, findings, plan);
    schema::scripts(ctx, findings);
}
