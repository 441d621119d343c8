//! The comparison, as pure code: a baseline, the namespace now (plus row counts and volume
//! summaries read through pods) and the target version in, a report out. No cluster, no clock.
//!
//! What is compared, and what is not:
//! - versions: the application's (through the profile) and every component whose version was
//!   the application's at record time must now be the target; without a profile, workloads
//!   that carried `app.kubernetes.io/version` must carry the target there;
//! - workloads: the workload the profile names for the target version exists (without a
//!   profile: every recorded workload, under any kind), and every rollout is complete;
//! - volumes, by UID ([`crate::volumes`]): every data volume recorded still exists and is
//!   bound to a claim a workload or pod uses, or its data lives on in a verified migrate-pv
//!   copy the new version uses. Reclaim policies are not compared (restoring them is a later
//!   step);
//! - trees: where the baseline holds a tree digest (`record --deep`), the claim holding the
//!   volume's data now digests the same (`volume-changed` otherwise);
//! - rows: no table has fewer rows, none is missing (version-specific tables excepted);
//! - Jobs created after the record: each has completed, none failed;
//! - custom resources: healthy by [`crate::health`];
//! - pods: none crash-looping. Restarts that grew are notes, not differences (an operator
//!   updating a sidecar in place restarts it).

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use upgrade_shared::profile::{Mode, Profile};
use upgrade_shared::version::Version;

use crate::baseline::{Baseline, TableRecord, VolumeSummary};
use crate::health;
use crate::record::{self, VERSION_LABEL};
use crate::report::{Checked, ComponentRow, Difference, Report, Verdict};
use crate::state::State;
use crate::volumes::{self, volume_name};

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--to`: the version every component must run now.
    pub to: Option<Version>,
}

/// What was read through pods after the upgrade.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Row counts now, per table; `None` when none were read.
    pub tables: Option<Vec<TableRecord>>,
    /// Databases that could not be read, and why.
    pub table_errors: Vec<String>,
    /// Summaries of data volumes now, by (namespace, claim).
    pub summaries: Vec<((String, String), VolumeSummary)>,
    /// Tree digests now (`record --deep` baselines), by the claim holding the data now.
    pub digests: Vec<((String, String), VolumeSummary)>,
    /// Digests that could not be read, and why.
    pub digest_errors: Vec<String>,
}

struct Found {
    differences: Vec<Difference>,
    unverified: Vec<String>,
    notes: Vec<String>,
    checked: Checked,
}

impl Found {
    fn differ(
        &mut self,
        code: &str,
        object: impl Into<String>,
        message: impl Into<String>,
        recorded: impl Into<String>,
        now: impl Into<String>,
    ) {
        self.differences.push(Difference {
            code: code.into(),
            object: object.into(),
            message: message.into(),
            recorded: recorded.into(),
            now: now.into(),
        });
    }
}

/// Compares the namespace now against its baseline.
/// The profile's edge from the recorded version to `to` when it reinstalls instead of
/// upgrading in place (KubeFATE's v1.7.1 workaround), as `from → to: workaround`.
fn reinstall(profile: &Profile, baseline: &Baseline, to: Option<&Version>) -> Option<String> {
    let from = Version::parse(baseline.version.as_deref()?).ok()?;
    let to = to?;
    [Mode::ExistingClaim, Mode::StorageClass]
        .into_iter()
        .filter_map(|mode| profile.edge(&from, to, mode))
        .find(|e| e.reinstall)
        .map(|e| {
            format!(
                "profile {}: {}",
                profile.name,
                e.workaround.as_deref().unwrap_or("reinstall")
            )
        })
}

pub fn compare(
    baseline: &Baseline,
    state: &State,
    profile: Option<&Profile>,
    observed: &Observed,
    options: &Options,
) -> Report {
    let mut f = Found {
        differences: Vec::new(),
        unverified: Vec::new(),
        notes: Vec::new(),
        checked: Checked::default(),
    };
    f.unverified.extend(
        baseline
            .gaps
            .iter()
            .map(|g| format!("not in the baseline: {g}")),
    );
    let app_now = profile.and_then(|p| record::app_version(p, state));
    let components = match profile {
        Some(p) => versions_with_profile(baseline, state, p, app_now.as_ref(), options, &mut f),
        None => versions_without_profile(baseline, state, options, &mut f),
    };
    rollouts(state, &mut f);
    f.unverified.extend(observed.digest_errors.iter().cloned());
    let held = volumes::compare(baseline, state, observed);
    f.checked.volumes += held.checked;
    match profile.and_then(|p| reinstall(p, baseline, options.to.as_ref().or(app_now.as_ref()))) {
        // The profile's edge replaces the installation: its volumes are not carried (the
        // database's rows are, through a dump, and are compared below).
        Some(edge) => f.notes.extend(held.differences.into_iter().map(|d| {
            format!(
                "{}: {} — not carried by the reinstall from {} ({edge}); only the database's rows are",
                d.object,
                d.message,
                baseline.version.as_deref().unwrap_or_default()
            )
        })),
        None => f.differences.extend(held.differences),
    }
    f.notes.extend(held.notes);
    tables(baseline, observed, &mut f);
    jobs(baseline, state, &mut f);
    custom_resources(baseline, state, options, &mut f);
    pods(baseline, state, &mut f);
    let components = components
        .into_iter()
        .map(|mut row| {
            if row.state == "ok"
                && let Some(d) = f.differences.iter().find(|d| {
                    row.workloads.split(", ").any(|w| w == d.object)
                        || d.object == row.name
                        || baseline.volumes.iter().any(|v| {
                            v.component.as_deref() == Some(row.name.as_str())
                                && d.object == volume_name(v)
                        })
                })
            {
                row.state = d.code.clone();
            }
            row
        })
        .collect();
    let verdict = if !f.differences.is_empty() {
        Verdict::Differences
    } else if !f.unverified.is_empty() {
        Verdict::Unverified
    } else {
        Verdict::Verified
    };
    Report {
        verdict,
        namespace: baseline.namespace.clone(),
        profile: baseline.profile.clone(),
        recorded_at: baseline.recorded_at.clone(),
        from: baseline.version.clone(),
        to: options.to.as_ref().map(|v| v.raw.clone()),
        version: app_now.map(|v| v.raw),
        components,
        differences: f.differences,
        unverified: f.unverified,
        notes: f.notes,
        checked: f.checked,
    }
}

fn reaches(text: Option<&str>, to: &Version) -> bool {
    text.and_then(|t| Version::parse(t).ok())
        .is_some_and(|v| to.covers(&v))
}

fn or_none(v: Option<&str>) -> String {
    v.unwrap_or("<none>").to_string()
}

fn versions_with_profile(
    baseline: &Baseline,
    state: &State,
    profile: &Profile,
    app_now: Option<&Version>,
    options: &Options,
    f: &mut Found,
) -> Vec<ComponentRow> {
    if let Some(to) = &options.to {
        match app_now {
            None => f.unverified.push(format!(
                "cannot read the running {} version in {} through the profile's version sources",
                profile.name, state.namespace
            )),
            Some(now) if !to.covers(now) => f.differ(
                "version",
                format!("{} {}", profile.name, state.namespace),
                format!("the application runs {now}, not {to}"),
                to.raw.clone(),
                now.raw.clone(),
            ),
            Some(_) => {}
        }
    }
    let target = options.to.as_ref().or(app_now);
    let mut rows = Vec::new();
    for component in &profile.components {
        f.checked.components += 1;
        let recorded = baseline
            .components
            .iter()
            .find(|c| c.name == component.name);
        let now = record::component_version(state, component);
        let workloads = state.component_workloads(component);
        let refs: Vec<String> = workloads.iter().map(|w| w.reference()).collect();
        if let (Some(to), Some(r)) = (&options.to, recorded)
            && r.follows_app
            && !reaches(now.as_deref(), to)
        {
            f.differ(
                "component-version",
                refs.first()
                    .cloned()
                    .unwrap_or_else(|| component.name.clone()),
                format!("component {} is not on {to}", component.name),
                to.raw.clone(),
                or_none(now.as_deref()),
            );
        }
        if let Some(expected) = target.and_then(|v| component.workload_at(v)) {
            let reference = format!("{}/{}", expected.kind.short(), expected.name);
            if !refs.contains(&reference) {
                f.differ(
                    "workload-missing",
                    reference.clone(),
                    format!(
                        "component {} runs as {reference} on this version, and it is not there",
                        component.name
                    ),
                    reference,
                    if refs.is_empty() {
                        "<none>".into()
                    } else {
                        refs.join(", ")
                    },
                );
            }
        } else if recorded.is_some_and(|r| !r.workloads.is_empty()) && refs.is_empty() {
            let was = recorded.map(|r| r.workloads.join(", ")).unwrap_or_default();
            f.differ(
                "workload-missing",
                component.name.clone(),
                format!("component {} has no workload any more", component.name),
                was,
                "<none>",
            );
        }
        let (ready, desired) = if workloads.is_empty() {
            let pods = state.component_pods(component);
            (
                pods.iter().filter(|p| pod_ready(p)).count() as i32,
                pods.len() as i32,
            )
        } else {
            workloads.iter().fold((0, 0), |(r, d), w| {
                (r + w.rollout.ready, d + w.rollout.desired)
            })
        };
        rows.push(ComponentRow {
            name: component.name.clone(),
            workloads: refs.join(", "),
            old: or_none(recorded.and_then(|r| r.version.as_deref())),
            new: or_none(now.as_deref()),
            ready: format!("{ready}/{desired}"),
            state: "ok".into(),
        });
    }
    rows
}

fn versions_without_profile(
    baseline: &Baseline,
    state: &State,
    options: &Options,
    f: &mut Found,
) -> Vec<ComponentRow> {
    let workloads = state.workloads();
    let labelled = baseline
        .workloads
        .iter()
        .filter(|w| w.labels.contains_key(VERSION_LABEL))
        .count();
    if options.to.is_some() && labelled == 0 {
        f.unverified.push(format!(
            "without a profile --to is checked on the {VERSION_LABEL} label, and no workload in {} carried one when the baseline was recorded",
            baseline.namespace
        ));
    }
    let mut rows = Vec::new();
    for r in &baseline.workloads {
        let now = workloads
            .iter()
            .find(|w| w.namespace == r.namespace && w.name == r.name && w.kind == r.kind)
            .or_else(|| {
                workloads
                    .iter()
                    .find(|w| w.namespace == r.namespace && w.name == r.name)
            });
        let Some(now) = now else {
            f.differ(
                "workload-missing",
                r.reference(),
                format!("{} is gone", r.reference()),
                r.reference(),
                "<none>",
            );
            continue;
        };
        let old = record::carried_version(r.images.values().map(String::as_str), [&r.labels]);
        let images = now.images();
        let new = record::carried_version(images.values().map(String::as_str), now.labels);
        if let Some(to) = &options.to
            && r.labels.contains_key(VERSION_LABEL)
        {
            let label = now.labels.and_then(|l| l.get(VERSION_LABEL));
            if !reaches(label.map(String::as_str), to) {
                f.differ(
                    "component-version",
                    now.reference(),
                    format!("{} is not labelled {VERSION_LABEL}={to}", now.reference()),
                    to.raw.clone(),
                    or_none(label.map(String::as_str)),
                );
            }
        }
        rows.push(ComponentRow {
            name: r.name.clone(),
            workloads: now.reference(),
            old: or_none(old.as_deref()),
            new: or_none(new.as_deref()),
            ready: format!("{}/{}", now.rollout.ready, now.rollout.desired),
            state: "ok".into(),
        });
    }
    f.checked.components = rows.len();
    rows
}

fn rollouts(state: &State, f: &mut Found) {
    for w in state.workloads() {
        f.checked.workloads += 1;
        if let Some(problem) = w.rollout.problem() {
            f.differ(
                "rollout-incomplete",
                w.reference(),
                format!(
                    "the rollout of {} is not complete: {problem}",
                    w.reference()
                ),
                format!("{} replicas updated and available", w.rollout.desired),
                format!(
                    "{} updated, {} available, {} in all",
                    w.rollout.updated, w.rollout.available, w.rollout.current
                ),
            );
        }
    }
}

fn tables(baseline: &Baseline, observed: &Observed, f: &mut Found) {
    f.unverified.extend(observed.table_errors.iter().cloned());
    if baseline.tables.is_empty() {
        return;
    }
    let Some(now) = &observed.tables else {
        f.unverified
            .push("row counts were recorded but could not be read now".into());
        return;
    };
    for t in baseline.tables.iter().filter(|t| !t.version_specific) {
        f.checked.tables += 1;
        let object = format!("table {}.{}", t.database, t.table);
        let failed_db = observed
            .table_errors
            .iter()
            .any(|e| e.contains(&format!("database {}", t.database)));
        match now
            .iter()
            .find(|n| n.component == t.component && n.database == t.database && n.table == t.table)
        {
            None if failed_db => {}
            None => f.differ(
                "table-missing",
                object,
                format!("table {}.{} is gone", t.database, t.table),
                format!("{} rows", t.rows),
                "missing",
            ),
            Some(n) if n.rows < t.rows => f.differ(
                "rows-lost",
                object,
                format!(
                    "table {}.{} has {} fewer rows than recorded",
                    t.database,
                    t.table,
                    t.rows - n.rows
                ),
                format!("{} rows", t.rows),
                format!("{} rows", n.rows),
            ),
            Some(_) => {}
        }
    }
}

fn job_condition(job: &Job, kind: &str) -> Option<(String, String)> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

fn jobs(baseline: &Baseline, state: &State, f: &mut Found) {
    let known: BTreeSet<&str> = baseline.jobs.iter().map(|j| j.uid.as_str()).collect();
    for job in &state.jobs {
        if known.contains(job.metadata.uid.as_deref().unwrap_or_default()) {
            continue;
        }
        f.checked.jobs += 1;
        let object = format!("job/{}", job.metadata.name.as_deref().unwrap_or_default());
        if let Some((reason, message)) = job_condition(job, "Failed") {
            f.differ(
                "job-failed",
                object,
                format!("the Job failed: {reason} {message}")
                    .trim()
                    .to_string(),
                "Complete",
                format!("Failed ({reason})"),
            );
        } else if job_condition(job, "Complete").is_none() {
            let s = job.status.clone().unwrap_or_default();
            f.differ(
                "job-incomplete",
                object,
                "the Job has not completed yet",
                "Complete",
                format!(
                    "{} active, {} succeeded, {} failed",
                    s.active.unwrap_or(0),
                    s.succeeded.unwrap_or(0),
                    s.failed.unwrap_or(0)
                ),
            );
        }
    }
}

fn custom_resources(baseline: &Baseline, state: &State, options: &Options, f: &mut Found) {
    let find = |kind: &str, ns: &str, name: &str| {
        state.custom.iter().find(|o| {
            o["kind"] == kind && o["metadata"]["namespace"] == ns && o["metadata"]["name"] == name
        })
    };
    for r in &baseline.custom_resources {
        f.checked.custom_resources += 1;
        let object = format!("{}/{}", r.kind, r.name);
        let Some(now) = find(&r.kind, &r.namespace, &r.name) else {
            f.differ(
                "custom-resource-missing",
                object,
                format!("{} {}/{} is gone", r.kind, r.namespace, r.name),
                format!("uid {}", r.uid),
                "<none>",
            );
            continue;
        };
        for p in health::problems(now, &r.health, options.to.as_ref()) {
            f.differ(
                "custom-resource-unhealthy",
                object.clone(),
                format!(
                    "{} {} is {}, expected {}",
                    object, p.field, p.now, p.expected
                ),
                p.expected,
                p.now,
            );
        }
    }
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pods(baseline: &Baseline, state: &State, f: &mut Found) {
    for pod in &state.pods {
        f.checked.pods += 1;
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let containers = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        for c in containers {
            let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
            if waiting.and_then(|w| w.reason.as_deref()) == Some("CrashLoopBackOff") {
                f.differ(
                    "crash-looping",
                    format!("pod/{name}"),
                    format!(
                        "container {} is in CrashLoopBackOff after {} restarts",
                        c.name, c.restart_count
                    ),
                    "running",
                    format!("CrashLoopBackOff, {} restarts", c.restart_count),
                );
            }
        }
        if status.phase.as_deref() == Some("Failed") {
            f.differ(
                "pod-failed",
                format!("pod/{name}"),
                format!(
                    "pod {name} failed: {}",
                    status.reason.as_deref().unwrap_or("no reason given")
                ),
                "Running",
                "Failed",
            );
        }
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        if let Some(before) = baseline.pods.iter().find(|p| p.uid == uid) {
            let now = record::restarts(pod);
            if now > before.restarts {
                f.notes.push(format!(
                    "pod/{name} restarted {} times since the baseline ({} then, {now} now)",
                    now - before.restarts,
                    before.restarts
                ));
            }
        }
    }
}
