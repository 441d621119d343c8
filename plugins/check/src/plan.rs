//! The check itself, as pure code: a profile, a snapshot and the target version in, a report
//! with a verdict, findings and an ordered runbook out. No cluster, no files, no clock.

use serde_json::Value;
use upgrade_shared::profile::{self, Mode, Outcome, Profile, VersionSource};
use upgrade_shared::version::Version;

pub use crate::context::{Context, Options};
use crate::context::{component_images, component_labels, component_pods, component_views};
pub use crate::finding::{Finding, Report, Severity, Step};
pub use crate::persistence::chart_managed;
use crate::rules;
use crate::runbook;
use crate::snapshot::Snapshot;

/// Why a check could not be made (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "cannot tell the running {profile} version in namespace {namespace}: {tried}; pass --from VERSION"
    )]
    NoRunningVersion {
        profile: String,
        namespace: String,
        tried: String,
    },
    #[error("{0}")]
    UnknownVersion(String),
    #[error("no target version: pass --to VERSION")]
    NoTarget,
    #[error(
        "no {app} components in namespace {namespace} (looked for {looked_for}); check -n/--namespace and --context"
    )]
    NothingFound {
        app: String,
        namespace: String,
        looked_for: String,
    },
}

/// Runs the check.
pub fn check(
    profile: &Profile,
    snapshot: &Snapshot,
    options: &Options,
) -> Result<Report, PlanError> {
    let to = options.to.clone().ok_or(PlanError::NoTarget)?;
    application_present(profile, snapshot)?;
    let from = match &options.from {
        Some(v) => v.clone(),
        None => detect_version(profile, snapshot)?,
    };
    profile
        .check_version(&from)
        .map_err(PlanError::UnknownVersion)?;
    profile
        .check_version(&to)
        .map_err(PlanError::UnknownVersion)?;
    let modes = crate::persistence::detect(profile, snapshot);
    let mode = deciding_mode(profile, &from, &to, &modes);
    let ctx = Context {
        profile,
        snapshot,
        options,
        instance: instance_name(profile, snapshot),
        edge: profile.edge(&from, &to, mode),
        from,
        to,
        mode,
        modes,
    };
    let mut findings = matrix_findings(&ctx);
    let mut plan = runbook::Plan::default();
    rules::apply_all(&ctx, &mut findings, &mut plan);
    let verdict = findings
        .iter()
        .map(|f| f.impact)
        .max()
        .unwrap_or(Outcome::Safe);
    let steps = runbook::assemble(&ctx, plan, verdict);
    Ok(Report {
        verdict,
        profile: profile.name.clone(),
        namespace: snapshot.namespace.clone(),
        instance: ctx.instance.clone(),
        from: ctx.display(&ctx.from),
        to: ctx.display(&ctx.to),
        persistence: ctx.mode,
        persistence_by_component: ctx.modes.clone(),
        findings,
        steps,
    })
}

/// True when the check would compare the connected clients' versions for this move (a major
/// or minor upgrade of a profile that says where the database lists its clients), so the
/// database's status must be read first.
pub fn clients_to_check(profile: &Profile, snapshot: &Snapshot, options: &Options) -> bool {
    if profile.client_compatibility.is_none() {
        return false;
    }
    let Some(to) = &options.to else {
        return false;
    };
    let from = match &options.from {
        Some(v) => Some(v.clone()),
        None => detect_version(profile, snapshot).ok(),
    };
    from.is_some_and(|from| rules::clients::needed(&from, to))
}

/// Refuses a snapshot that holds nothing of the application: no workload or pod of any
/// component, no custom resource the profile reads, no cluster file. A runbook for claims that
/// do not exist would only mislead.
fn application_present(profile: &Profile, snapshot: &Snapshot) -> Result<(), PlanError> {
    if snapshot.cluster_file.is_some() {
        return Ok(());
    }
    let custom_kinds: Vec<(&str, &str)> = profile
        .version_sources
        .iter()
        .filter_map(|s| match s {
            VersionSource::CustomResource {
                api_version, kind, ..
            } => Some((api_version.as_str(), kind.as_str())),
            _ => None,
        })
        .collect();
    let found = profile.components.iter().any(|c| {
        !component_views(profile, snapshot, &snapshot.namespace, &c.name).is_empty()
            || !component_pods(snapshot, c).is_empty()
    }) || snapshot.custom.iter().any(|o| {
        custom_kinds
            .iter()
            .any(|(a, k)| o["apiVersion"] == *a && o["kind"] == *k)
    });
    if found {
        return Ok(());
    }
    let mut looked_for: Vec<String> = profile
        .components
        .iter()
        .map(|c| match &c.namespace {
            Some(ns) if *ns != snapshot.namespace => format!("{ns}/{}", c.selector),
            _ => c.selector.clone(),
        })
        .collect();
    looked_for.extend(custom_kinds.iter().map(|(a, k)| format!("{k} ({a})")));
    looked_for.dedup();
    Err(PlanError::NothingFound {
        app: profile.display_name().to_string(),
        namespace: snapshot.namespace.clone(),
        looked_for: looked_for.join(", "),
    })
}

/// The mode whose edge gives the worst outcome (a move no edge covers is the worst of all);
/// the profile's default when no data component was found.
fn deciding_mode(
    profile: &Profile,
    from: &Version,
    to: &Version,
    modes: &std::collections::BTreeMap<String, Mode>,
) -> Mode {
    let fallback = profile.persistence.default.unwrap_or(Mode::StorageClass);
    let outcome = |m: Mode| {
        profile
            .edge(from, to, m)
            .map_or(Outcome::Blocked, |e| e.outcome)
    };
    let mut in_use: Vec<Mode> = modes.values().copied().collect();
    in_use.sort();
    in_use.dedup();
    // max_by_key keeps the last of equals: iterate worst-first modes in reverse so a tie goes
    // to the mode listed first.
    in_use
        .into_iter()
        .rev()
        .max_by_key(|m| outcome(*m))
        .unwrap_or(fallback)
}

/// One finding per persistence mode in use: what the profile's matrix says of the move for
/// the components in that mode; plus one naming the modes when components differ.
fn matrix_findings(ctx: &Context<'_>) -> Vec<Finding> {
    if ctx.at_target() {
        return vec![Finding {
            severity: Severity::Info,
            component: ctx.profile.name.clone(),
            code: "already-at-target".into(),
            message: format!(
                "{} is already at {}: nothing to upgrade",
                ctx.instance,
                ctx.display(&ctx.to)
            ),
            remediation: "none needed".into(),
            evidence: Vec::new(),
            impact: Outcome::Safe,
        }];
    }
    let in_use = ctx.modes_in_use();
    let mixed = in_use.len() > 1;
    let mut out = Vec::new();
    if mixed {
        out.push(Finding {
            severity: Severity::Warning,
            component: ctx.profile.name.clone(),
            code: "mixed-persistence".into(),
            message: format!(
                "components keep their data in different ways: {}; each is checked on its own and the verdict is the worst",
                in_use
                    .iter()
                    .map(|(m, cs)| format!("{} ({})", m.as_str(), cs.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            remediation: "none needed for the check; the runbook treats each component by its own mode".into(),
            evidence: ctx
                .modes
                .iter()
                .map(|(c, m)| format!("{c}: {}", m.as_str()))
                .collect(),
            impact: Outcome::Safe,
        });
    }
    for (mode, components) in &in_use {
        let scope = if mixed {
            format!("{} ({})", mode.as_str(), components.join(", "))
        } else {
            mode.as_str().to_string()
        };
        out.push(matrix_finding(ctx, *mode, &scope));
    }
    out
}

/// Says how a target written without all its parts was read when that makes it a move back:
/// "; v1 is read as v1.0.0, older than the running v1.5.3".
fn partial_target_note(ctx: &Context<'_>) -> String {
    let to = &ctx.to;
    if (to.minor.is_some() && to.patch.is_some()) || ctx.from.cmp_numbers(to).is_le() {
        return String::new();
    }
    let full = Version {
        minor: Some(to.minor.unwrap_or(0)),
        patch: Some(to.patch.unwrap_or(0)),
        ..to.clone()
    };
    format!(
        "; {} is read as {}, older than the running {}",
        ctx.display(to),
        ctx.display(&full),
        ctx.display(&ctx.from)
    )
}

fn matrix_finding(ctx: &Context<'_>, mode: Mode, scope: &str) -> Finding {
    let (from, to) = (ctx.display(&ctx.from), ctx.display(&ctx.to));
    let note = partial_target_note(ctx);
    match ctx.edge_for(mode) {
        Some(edge) => Finding {
            severity: match edge.outcome {
                Outcome::Safe => Severity::Info,
                Outcome::NeedsSteps => Severity::Warning,
                Outcome::DataLoss | Outcome::Blocked => Severity::Critical,
            },
            component: ctx.profile.name.clone(),
            code: "upgrade-path".into(),
            message: format!(
                "{from} → {to} with persistence {}: {} ({}){note}",
                scope,
                edge.outcome.as_str(),
                edge.reason
            ),
            remediation: edge.workaround.clone().unwrap_or_else(|| "none needed".into()),
            evidence: vec![format!("profile {} edge from {:?} to {:?}", ctx.profile.name, edge.from.value, edge.to.value)],
            impact: edge.outcome,
        },
        None => Finding {
            severity: Severity::Critical,
            component: ctx.profile.name.clone(),
            code: "upgrade-path".into(),
            message: format!(
                "{from} → {to} with persistence {} is not an upgrade path the {} profile knows{note}",
                scope,
                ctx.profile.name
            ),
            remediation: "upgrade through versions the profile supports, or describe this edge in a profile of your own (--profile-file)".into(),
            evidence: Vec::new(),
            impact: Outcome::Blocked,
        },
    }
}

/// Reads the running version from the first source that has one.
pub fn detect_version(profile: &Profile, snapshot: &Snapshot) -> Result<Version, PlanError> {
    profile::detect_version(profile, &SnapshotInputs { profile, snapshot }).map_err(|tried| {
        PlanError::NoRunningVersion {
            profile: profile.name.clone(),
            namespace: snapshot.namespace.clone(),
            tried,
        }
    })
}

/// The snapshot, answering the profile's version sources.
struct SnapshotInputs<'a> {
    profile: &'a Profile,
    snapshot: &'a Snapshot,
}

impl profile::VersionInputs for SnapshotInputs<'_> {
    fn cluster_file_field(&self, field: &str) -> Option<String> {
        self.snapshot
            .cluster_file
            .as_ref()
            .and_then(|c| profile::field(c, field))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    fn custom_field(&self, api_version: &str, kind: &str, field: &str) -> Option<String> {
        self.snapshot
            .custom
            .iter()
            .filter(|o| o["apiVersion"] == *api_version && o["kind"] == *kind)
            .find_map(|o| {
                profile::field(o, field)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
    }

    fn images(&self, component: &str, container: Option<&str>) -> Vec<String> {
        component_images(
            self.profile,
            self.snapshot,
            &self.snapshot.namespace,
            component,
            container,
        )
    }

    fn labels(&self, component: &str) -> Vec<std::collections::BTreeMap<String, String>> {
        component_labels(
            self.profile,
            self.snapshot,
            &self.snapshot.namespace,
            component,
        )
        .into_iter()
        .cloned()
        .collect()
    }
}

fn instance_name(profile: &Profile, snapshot: &Snapshot) -> String {
    if let Some(name) = snapshot
        .cluster_file
        .as_ref()
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
    {
        return name.to_string();
    }
    for source in &profile.version_sources {
        if let VersionSource::CustomResource {
            api_version, kind, ..
        } = source
            && let Some(name) = snapshot
                .custom
                .iter()
                .find(|o| o["apiVersion"] == *api_version && o["kind"] == *kind)
                .and_then(|o| o.pointer("/metadata/name"))
                .and_then(Value::as_str)
        {
            return name.to_string();
        }
    }
    for component in &profile.components {
        for w in component_views(profile, snapshot, &snapshot.namespace, &component.name) {
            if let Some(release) = w.labels.and_then(|l| {
                l.get("release")
                    .or_else(|| l.get("app.kubernetes.io/instance"))
            }) {
                return release.clone();
            }
        }
    }
    snapshot.namespace.clone()
}
