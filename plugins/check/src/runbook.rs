//! Orders the steps the rules asked for into one runbook and fills in the profile's command
//! templates with the names the check resolved.

use upgrade_shared::profile::{Outcome, StepTemplate};
use upgrade_shared::template;

use crate::context::Context;
use crate::finding::Step;

/// Steps the rules asked for, by where they go in the runbook.
#[derive(Debug, Default)]
pub struct Plan {
    /// Before the edge's own steps: keep volumes, hand claims over, stop what would block.
    pub prepare: Vec<Step>,
    /// After the edge's own steps (a redeployed component exists again): copy data over.
    pub migrate: Vec<Step>,
    /// After the upgrade and its checks: put policies back, clean up what is no longer used.
    pub finish: Vec<Step>,
}

impl Plan {
    /// Adds a step unless the same command is already there.
    pub fn push(list: &mut Vec<Step>, description: impl Into<String>, command: impl Into<String>) {
        let command = command.into();
        if !list.iter().any(|s| s.command == command) {
            list.push(Step {
                description: description.into(),
                command,
            });
        }
    }
}

/// Which side of the upgrade a template speaks of: workloads before it, or after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Before,
    After,
}

/// The whole runbook, in order.
pub fn assemble(ctx: &Context<'_>, plan: Plan, verdict: Outcome) -> Vec<Step> {
    // Every edge in use brings its steps (components in different modes may take different
    // edges); a step two edges share is listed once.
    let mut edge_steps: Vec<StepTemplate> = Vec::new();
    let mut after_copy: Vec<StepTemplate> = Vec::new();
    for edge in ctx.edges_in_use() {
        for (steps, into) in [
            (&edge.steps, &mut edge_steps),
            (&edge.after_copy, &mut after_copy),
        ] {
            for step in steps {
                if !into.iter().any(|s| s.command == step.command) {
                    into.push(step.clone());
                }
            }
        }
    }
    let edge_steps = edge_steps.as_slice();
    let render = |templates: &[StepTemplate], side: Side| -> Vec<Step> {
        templates
            .iter()
            .map(|t| Step {
                description: t.description.clone(),
                command: fill(ctx, &t.command, side),
            })
            .collect()
    };
    if verdict == Outcome::Blocked {
        return render(edge_steps, Side::Before);
    }
    if ctx.at_target() {
        // Nothing to upgrade: only what the rules found unfinished.
        let mut steps = plan.prepare;
        steps.extend(plan.migrate);
        steps.extend(plan.finish);
        return steps;
    }
    let reinstall = ctx.reinstall();
    let runbook = &ctx.profile.runbook;
    let mut steps = render(&runbook.before, Side::Before);
    steps.extend(plan.prepare);
    steps.extend(render(edge_steps, Side::Before));
    steps.extend(plan.migrate);
    steps.extend(render(&after_copy, Side::After));
    if !reinstall {
        steps.extend(upgrade_and_schema(
            ctx,
            render(&runbook.upgrade, Side::Before),
        ));
    }
    steps.extend(render(&runbook.after, Side::After));
    steps.extend(plan.finish);
    once_each(steps)
}

/// Keeps the first of steps with the same command: a rule and the profile may ask for the same
/// thing (the immutable-field pair of a StatefulSet the profile already knows about).
fn once_each(steps: Vec<Step>) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::with_capacity(steps.len());
    for step in steps {
        if !out.iter().any(|s| s.command == step.command) {
            out.push(step);
        }
    }
    out
}

/// The schema scripts the move crosses (`sql/fate/1.8.0-1.9.0.sql`, …), when the profile has
/// scripts, some component keeps data and the move is made in place. `Some(empty)` when no
/// script lies on the way; `None` when there is nothing to say.
pub fn schema_chain(ctx: &Context<'_>) -> Option<Result<Vec<String>, ()>> {
    let sql = ctx.profile.sql.as_ref()?;
    let all_none = ctx
        .modes_in_use()
        .keys()
        .all(|m| *m == upgrade_shared::profile::Mode::None);
    if all_none || ctx.reinstall() || ctx.from.cmp_numbers(&ctx.to).is_ge() {
        return None;
    }
    Some(
        upgrade_shared::sql::chain_across(&sql.dir, &ctx.from, &ctx.to)
            .map(|chain| {
                chain
                    .iter()
                    .map(|s| format!("sql/{}/{}", sql.dir, s.file))
                    .collect()
            })
            .ok_or(()),
    )
}

/// The profile's upgrade steps, and the schema chain: said in the upgrade step's description
/// when the application's own upgrade runs it, else a step of its own.
fn upgrade_and_schema(ctx: &Context<'_>, upgrade: Vec<Step>) -> Vec<Step> {
    let Some(Ok(files)) = schema_chain(ctx) else {
        return upgrade;
    };
    if files.is_empty() {
        return upgrade;
    }
    let Some(sql) = &ctx.profile.sql else {
        return upgrade;
    };
    if let Some(who) = &sql.applied_by {
        let mut upgrade = upgrade;
        if let Some(first) = upgrade.first_mut() {
            first.description = format!(
                "{}; {who} runs the schema scripts in order: {}",
                first.description,
                files.join(", ")
            );
        }
        return upgrade;
    }
    let mut steps = upgrade;
    if let Some(c) = ctx.profile.component(&sql.component)
        && let Some(workload) = workload_ref(ctx, c, Side::After)
    {
        steps.push(Step {
            description: format!("Wait until the new {} is ready", c.name),
            command: format!(
                "kubectl rollout status {workload} -n {} --timeout=10m",
                ctx.namespace_of(c)
            ),
        });
    }
    // `apply --backup` refuses a backup taken before the database's last write, and the new
    // version's pods may write as they start: the database is dumped again right before the
    // scripts, and apply relies on that dump. The backup taken first stays the way back from the
    // whole upgrade.
    let dump = "{instance}-{from}-before-schema.sql";
    steps.push(Step {
        description: format!(
            "Back up {} again now that the new pods run, right before its schema changes",
            sql.component
        ),
        command: fill(
            ctx,
            &format!(
                "kubectl upgrade-backup dump -n {{ns:{c}}} --profile {p} --output {dump}",
                c = sql.component,
                p = ctx.profile.name
            ),
            Side::After,
        ),
    });
    steps.push(Step {
        description: format!(
            "Apply the schema scripts in order once the new pods run: {}",
            files.join(", ")
        ),
        command: fill(
            ctx,
            &format!(
                "kubectl upgrade-migrate-db apply -n {{ns:{c}}} --profile {p} --from {{from}} --to {{to}} --backup {dump}.manifest.json",
                c = sql.component,
                p = ctx.profile.name
            ),
            Side::After,
        ),
    });
    steps
}

fn fill(ctx: &Context<'_>, text: &str, side: Side) -> String {
    template::render(text, |key, arg| resolve(ctx, key, arg, side))
}

fn resolve(ctx: &Context<'_>, key: &str, arg: Option<&str>, side: Side) -> String {
    let component = arg.and_then(|name| ctx.profile.component(name));
    let missing = || {
        format!(
            "<{key}{}>",
            arg.map(|a| format!(":{a}")).unwrap_or_default()
        )
    };
    match (key, component) {
        ("namespace", _) => ctx.snapshot.namespace.clone(),
        ("from", _) => ctx.display(&ctx.from),
        ("to", _) => ctx.display(&ctx.to),
        ("instance", _) => ctx.instance.clone(),
        ("profile", _) => ctx.profile.name.clone(),
        ("ns", Some(c)) => ctx.namespace_of(c),
        ("workload", Some(c)) => workload_ref(ctx, c, side).unwrap_or_else(missing),
        ("pod", Some(c)) => ctx
            .pods_of(c)
            .first()
            .and_then(|p| p.metadata.name.clone())
            .map(|n| format!("pod/{n}"))
            .or_else(|| workload_ref(ctx, c, side))
            .unwrap_or_else(missing),
        ("database", Some(c)) => c
            .database
            .as_ref()
            .map(|d| d.databases.join(","))
            .unwrap_or_else(missing),
        ("ignore-tables", Some(c)) => c
            .database
            .as_ref()
            .map(|d| {
                let db = d.databases.first().cloned().unwrap_or_default();
                d.version_specific_tables
                    .iter()
                    .map(|t| format!("--ignore-table {db}.{t}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default(),
        ("claim", Some(c)) => component_claims(ctx, c)
            .into_iter()
            .next()
            .unwrap_or_else(missing),
        ("manifest", Some(c)) => crate::rules::target_file(ctx, c)
            .map(|f| shell_word(&f))
            .unwrap_or_else(|| format!("<target manifest of {}>", c.name)),
        ("size", Some(c)) => component_claims(ctx, c)
            .iter()
            .find_map(|claim| claim_size(ctx, claim))
            .unwrap_or_else(missing),
        _ => missing(),
    }
}

/// `deploy/mysql` before the upgrade (as found, else as the profile says), `sts/mysql` after.
fn workload_ref(
    ctx: &Context<'_>,
    c: &upgrade_shared::profile::Component,
    side: Side,
) -> Option<String> {
    if side == Side::Before
        && let Some(w) = ctx.workloads_of(c).first()
    {
        return Some(w.reference());
    }
    let version = if side == Side::Before {
        &ctx.from
    } else {
        &ctx.to
    };
    c.workload_at(version)
        .map(|w| format!("{}/{}", w.kind.short(), w.name))
}

/// Claims a component uses now: from its workloads when the input has workloads, else (a
/// cluster file alone) from what the profile says the chart creates.
pub fn component_claims(ctx: &Context<'_>, c: &upgrade_shared::profile::Component) -> Vec<String> {
    if ctx.snapshot.workloads().is_empty() {
        return c
            .workload_at(&ctx.from)
            .map(|w| w.chart_claims())
            .unwrap_or_default();
    }
    ctx.workloads_of(c)
        .iter()
        .flat_map(|w| w.claims())
        .collect()
}

/// The requested size of a claim (`20Gi`), when the snapshot has it.
pub fn claim_size(ctx: &Context<'_>, claim: &str) -> Option<String> {
    ctx.snapshot
        .claims
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(claim))
        .and_then(|c| c.spec.as_ref())
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| q.0.clone())
}

/// Quotes a word for a shell when it needs quoting (file paths in commands).
pub fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
