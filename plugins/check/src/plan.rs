//! The check itself, as pure code: a profile, a snapshot and the target version in, a report
//! with a verdict, findings and an ordered runbook out. No cluster, no files, no clock.

use serde::Serialize;
use serde_json::Value;
use upgrade_shared::profile::{self, Component, Edge, Mode, Outcome, Profile, VersionSource};
use upgrade_shared::version::Version;

use crate::rules;
use crate::runbook;
use crate::snapshot::{Snapshot, WorkloadView};

/// What the user asked for beyond the snapshot.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The running version when given with `--from` (else detected).
    pub from: Option<Version>,
    /// The target version.
    pub to: Option<Version>,
    /// Target manifests (`-f`), each with the file it came from.
    pub targets: Vec<(String, Value)>,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One thing the check found, with the objects that show it and what to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub component: String,
    pub code: String,
    pub message: String,
    pub remediation: String,
    /// Objects that show it (`pvc/mysql-data`, `pv/pvc-0865…`).
    pub evidence: Vec<String>,
    /// The verdict this finding alone would give.
    pub impact: Outcome,
}

/// One runbook step with the exact command to run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub description: String,
    pub command: String,
}

/// The answer of `kubectl upgrade-check`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub verdict: Outcome,
    pub profile: String,
    pub namespace: String,
    pub instance: String,
    pub from: String,
    pub to: String,
    pub persistence: Mode,
    pub findings: Vec<Finding>,
    pub steps: Vec<Step>,
}

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
}

/// Resolved facts the rules and the runbook share.
pub struct Context<'a> {
    pub profile: &'a Profile,
    pub snapshot: &'a Snapshot,
    pub options: &'a Options,
    pub from: Version,
    pub to: Version,
    pub mode: Mode,
    pub edge: Option<&'a Edge>,
    pub instance: String,
}

impl Context<'_> {
    /// The namespace a component lives in.
    pub fn namespace_of(&self, component: &Component) -> String {
        component
            .namespace
            .clone()
            .unwrap_or_else(|| self.snapshot.namespace.clone())
    }

    /// Workloads in the snapshot that belong to a component (selector on their labels or
    /// their pod template's labels).
    pub fn workloads_of(&self, component: &Component) -> Vec<WorkloadView<'_>> {
        component_views(
            self.profile,
            self.snapshot,
            &self.snapshot.namespace,
            &component.name,
        )
    }

    /// Pods in the snapshot that belong to a component.
    pub fn pods_of(&self, component: &Component) -> Vec<&k8s_openapi::api::core::v1::Pod> {
        let reqs = upgrade_shared::names::parse_selector(&component.selector).unwrap_or_default();
        let ns = self.namespace_of(component);
        self.snapshot
            .pods
            .iter()
            .filter(|p| p.metadata.namespace.as_deref().is_none_or(|n| n == ns))
            .filter(|p| upgrade_shared::names::selector_matches(&reqs, p.metadata.labels.as_ref()))
            .collect()
    }

    /// A version as the profile writes its versions (`v1.9.0` for FATE, `7.1.33` for FDB).
    pub fn display(&self, v: &Version) -> String {
        let prefixed = self
            .profile
            .versions
            .first()
            .is_some_and(|f| f.value.starts_with('v'));
        format!("{}{}", if prefixed { "v" } else { "" }, v.canonical())
    }
}

/// Runs the check.
pub fn check(
    profile: &Profile,
    snapshot: &Snapshot,
    options: &Options,
) -> Result<Report, PlanError> {
    let to = options.to.clone().ok_or(PlanError::NoTarget)?;
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
    let mode = detect_mode(profile, snapshot);
    let edge = profile.edge(&from, &to, mode);
    let ctx = Context {
        profile,
        snapshot,
        options,
        instance: instance_name(profile, snapshot),
        from,
        to,
        mode,
        edge,
    };
    let mut findings = vec![matrix_finding(&ctx)];
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
        persistence: mode,
        findings,
        steps,
    })
}

fn matrix_finding(ctx: &Context<'_>) -> Finding {
    let (from, to) = (ctx.display(&ctx.from), ctx.display(&ctx.to));
    match ctx.edge {
        Some(edge) => Finding {
            severity: match edge.outcome {
                Outcome::Safe => Severity::Info,
                Outcome::NeedsSteps => Severity::Warning,
                Outcome::DataLoss | Outcome::Blocked => Severity::Critical,
            },
            component: ctx.profile.name.clone(),
            code: "upgrade-path".into(),
            message: format!(
                "{from} → {to} with persistence {}: {} ({})",
                ctx.mode.as_str(),
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
                "{from} → {to} with persistence {} is not an upgrade path the {} profile knows",
                ctx.mode.as_str(),
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

fn component_views<'a>(
    profile: &Profile,
    snapshot: &'a Snapshot,
    ns: &str,
    name: &str,
) -> Vec<WorkloadView<'a>> {
    let Some(component) = profile.component(name) else {
        return Vec::new();
    };
    let reqs = upgrade_shared::names::parse_selector(&component.selector).unwrap_or_default();
    let ns = component.namespace.as_deref().unwrap_or(ns);
    snapshot
        .workloads()
        .into_iter()
        .filter(|w| w.namespace.is_none_or(|n| n == ns))
        .filter(|w| {
            upgrade_shared::names::selector_matches(&reqs, w.labels)
                || upgrade_shared::names::selector_matches(
                    &reqs,
                    w.template
                        .and_then(|t| t.metadata.as_ref())
                        .and_then(|m| m.labels.as_ref()),
                )
        })
        .collect()
}

fn component_images(
    profile: &Profile,
    snapshot: &Snapshot,
    ns: &str,
    name: &str,
    container: Option<&str>,
) -> Vec<String> {
    let mut images = Vec::new();
    for w in component_views(profile, snapshot, ns, name) {
        let containers = w
            .template
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers.as_slice())
            .unwrap_or_default();
        for c in containers {
            if container.is_none_or(|want| want == c.name) {
                images.extend(c.image.clone());
            }
        }
    }
    images
}

fn component_labels<'a>(
    profile: &Profile,
    snapshot: &'a Snapshot,
    ns: &str,
    name: &str,
) -> Vec<&'a std::collections::BTreeMap<String, String>> {
    component_views(profile, snapshot, ns, name)
        .into_iter()
        .filter_map(|w| w.labels)
        .collect()
}

/// Tells how data is persisted: a cluster file says it outright; otherwise the claims of the
/// profile's data components do (none → `none`, chart-managed → `storage-class`, else
/// `existing-claim`).
pub fn detect_mode(profile: &Profile, snapshot: &Snapshot) -> Mode {
    let fallback = profile.persistence.default.unwrap_or(Mode::StorageClass);
    if let (Some(file), Some(rule)) = (&snapshot.cluster_file, &profile.persistence.cluster_file) {
        if profile::field(file, &rule.enabled).and_then(Value::as_bool) == Some(false) {
            return Mode::None;
        }
        let existing = rule.existing_claims.iter().any(|path| {
            profile::field(file, path)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        });
        return if existing {
            Mode::ExistingClaim
        } else {
            Mode::StorageClass
        };
    }
    let mut seen_workload = false;
    for name in &profile.persistence.detect_from {
        for w in component_views(profile, snapshot, &snapshot.namespace, name) {
            seen_workload = true;
            let ns = w.namespace.unwrap_or(&snapshot.namespace);
            if !w.claim_templates.is_empty() {
                return Mode::StorageClass;
            }
            if let Some(claim_name) = w.mounted_claims().first() {
                let managed = snapshot.claim(ns, claim_name).is_none_or(chart_managed);
                return if managed {
                    Mode::StorageClass
                } else {
                    Mode::ExistingClaim
                };
            }
        }
    }
    if seen_workload { Mode::None } else { fallback }
}

/// True when a chart (Helm) created the object: it goes away when the chart drops it.
pub fn chart_managed(claim: &k8s_openapi::api::core::v1::PersistentVolumeClaim) -> bool {
    let labels = claim.metadata.labels.as_ref();
    let annotations = claim.metadata.annotations.as_ref();
    labels
        .and_then(|l| l.get("app.kubernetes.io/managed-by"))
        .is_some_and(|v| v == "Helm")
        || labels
            .and_then(|l| l.get("heritage"))
            .is_some_and(|v| v == "Helm")
        || annotations.is_some_and(|a| a.contains_key("meta.helm.sh/release-name"))
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
