//! Upgrade profiles: what an application looks like on a cluster and which of its upgrades
//! keep data. Built-in profiles are embedded YAML files; users bring their own with
//! `--profile-file`. Every profile is validated on load, with errors that name the file and line.

mod builtin;
mod detect;
mod validate;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::version::Version;

pub use builtin::{BUILTIN, builtin, builtin_names};
pub use detect::{VersionInputs, detect_version};

/// A whole profile, as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Profile {
    /// Short name used with `--profile` (`fate`, `foundationdb`, …).
    pub name: String,
    /// One line naming the application.
    pub title: String,
    /// The application's name as people write it in a sentence (`FATE`, `FoundationDB`);
    /// `name` when absent.
    #[serde(default)]
    pub short_name: Option<String>,
    /// Known versions, oldest first. A partial entry (`7.1`) covers all its patch releases.
    pub versions: Vec<Spanned<String>>,
    /// Accept versions newer than the last known one (a matrix's "future versions" column).
    #[serde(default)]
    pub future_versions: bool,
    /// Where the running version is read from, tried in order.
    pub version_sources: Vec<VersionSource>,
    /// How data is persisted and how to tell the mode in use.
    #[serde(default)]
    pub persistence: Persistence,
    /// The parts of the application.
    pub components: Vec<Component>,
    /// Upgrade edges with their outcome; the first edge that matches decides.
    pub edges: Vec<Edge>,
    /// Database images the chart pins per version.
    #[serde(default)]
    pub image_pins: Vec<ImagePin>,
    /// Schema migration scripts, kept in `sql/<dir>/FROM-TO.sql`.
    #[serde(default)]
    pub sql: Option<SqlScripts>,
    /// Steps that every upgrade of this application takes, around the edge's own steps.
    #[serde(default)]
    pub runbook: Runbook,
    /// Custom resources whose operator reports how far it got: a wanted version or generation
    /// it has not reached yet means an upgrade is in progress.
    #[serde(default)]
    pub upgrade_progress: Vec<UpgradeProgress>,
    /// How `kubectl upgrade-restart` restarts the application's processes.
    #[serde(default)]
    pub restart: Option<Restart>,
    /// Where the database reports its connected clients' library versions, checked before a
    /// version-incompatible (major or minor) upgrade.
    #[serde(default)]
    pub client_compatibility: Option<ClientCompatibility>,
}

/// A command run in one of the application's pods that prints the database's status as JSON,
/// and where in it the connected clients' versions are: FoundationDB's
/// `fdbcli --exec 'status json'`, `cluster.clients.supported_versions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientCompatibility {
    /// Components whose pods can run the command (the first Running one is used).
    pub components: Vec<String>,
    /// The container that has the command.
    pub container: String,
    /// The command's argv (no shell).
    pub command: Vec<String>,
    /// Dotted path of the list of client versions in the printed document.
    pub field: String,
    /// Dotted path of the database's own processes in the document (FoundationDB:
    /// `cluster.processes`, each with an `address`). A client at a process's machine address
    /// runs in a process pod — an `fdbcli` such as the check's own — and is not counted, as
    /// the operator does not count it.
    #[serde(default)]
    pub processes: Option<String>,
    /// Log groups whose clients are not counted.
    #[serde(default)]
    pub ignored_log_groups: Option<IgnoredLogGroups>,
}

/// Where the operator's custom resource lists the log groups an upgrade ignores, and the list
/// when it does not (FoundationDB: `spec.automationOptions.ignoreLogGroupsForUpgrade`,
/// default `[fdb-kubernetes-operator]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IgnoredLogGroups {
    pub custom_resource: ResourceKind,
    pub field: String,
    #[serde(default)]
    pub default: Vec<String>,
}

/// Where an operator's custom resource says what is wanted and what is reached.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpgradeProgress {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    /// Dotted path of the wanted version (`spec.version`).
    pub desired: String,
    /// Dotted path of the version running (`status.runningVersion`).
    pub running: String,
    /// Dotted path of the last generation the operator reconciled
    /// (`status.generations.reconciled`), compared with `metadata.generation`.
    #[serde(default)]
    pub reconciled_generation: Option<String>,
}

/// A kind of custom resource the application's operator keeps.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceKind {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
}

/// What restarting the application's processes needs to know.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Restart {
    /// Process groups an operator lists in a custom resource, with their conditions.
    #[serde(default)]
    pub process_groups: Option<ProcessGroups>,
    /// A boolean field of a custom resource that must be true between restarts.
    #[serde(default)]
    pub health: Option<HealthField>,
    /// The command that restarts the application's process without recreating its pod.
    #[serde(default)]
    pub in_place: Option<InPlace>,
}

/// Where process groups and their conditions are listed, and how they map to pods
/// (FoundationDB: `status.processGroups[].processGroupConditions[].type`, pods labelled
/// `foundationdb.org/fdb-process-group-id`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProcessGroups {
    pub custom_resource: ResourceKind,
    /// Dotted path of the list of groups in the resource.
    pub list: String,
    /// Field of a group holding its id.
    pub id: String,
    /// Field of a group holding its conditions (objects with a `type`).
    pub conditions: String,
    /// Field of a group that is set once the group is marked for removal.
    #[serde(default)]
    pub removal: Option<String>,
    /// Pod label whose value is the group's id.
    pub pod_label: String,
    /// Pod label whose value is the resource's name, when pods carry one.
    #[serde(default)]
    pub instance_label: Option<String>,
    /// Dotted path of the object in which the operator records, per stage of its
    /// reconciliation, the last spec generation that reached it (FoundationDB:
    /// `status.generations`, with `reconciled`, `needsBounce`, `hasUnhealthyProcess`, ...).
    /// The groups' conditions speak for the current spec only once one of them is the
    /// resource's `metadata.generation`; selecting by condition waits for that.
    #[serde(default)]
    pub generations: Option<String>,
}

/// A boolean field that says the application is healthy (`status.health.available`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthField {
    pub custom_resource: ResourceKind,
    /// Dotted path of the field; every such resource in the namespace must have it `true`.
    pub field: String,
}

/// A restart inside the running container (FoundationDB: `pkill fdbserver`, which the
/// monitor process answers by starting the server again).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InPlace {
    pub container: String,
    pub command: Vec<String>,
}

/// One place the running version can be read from.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum VersionSource {
    /// The image tag of a component's container (`federatedai/python:1.8.0-release`).
    Image {
        component: String,
        #[serde(default)]
        container: Option<String>,
    },
    /// A label on a component's workload.
    Label { component: String, key: String },
    /// A Helm `helm.sh/chart` label `<chart>-<version>` on a component's workload.
    HelmChart { component: String, chart: String },
    /// A field of a custom resource (`status.runningVersion`).
    CustomResource {
        #[serde(rename = "apiVersion")]
        api_version: String,
        kind: String,
        /// Dotted path into the object.
        field: String,
    },
    /// A top-level field of a KubeFATE `cluster.yaml` given with `--from-file`.
    ClusterFile { field: String },
}

/// How an application persists its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Claims the user created and handed to the chart (`existingClaim`).
    ExistingClaim,
    /// Claims the chart creates, provisioned by a storage class.
    StorageClass,
    /// No persistent volumes: data lives and dies with the pods.
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ExistingClaim => "existing-claim",
            Mode::StorageClass => "storage-class",
            Mode::None => "none",
        }
    }
}

/// Persistence settings of a profile.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Persistence {
    /// Components whose claims tell the mode in use. Without claims: `none`; with claims a
    /// chart manages (Helm labels or annotations): `storage-class`; else `existing-claim`.
    #[serde(default)]
    pub detect_from: Vec<String>,
    /// Mode assumed when nothing can be detected.
    #[serde(default)]
    pub default: Option<Mode>,
    /// Fields of a KubeFATE-style `cluster.yaml` that say the mode.
    #[serde(default)]
    pub cluster_file: Option<ClusterFilePersistence>,
}

/// `persistence: true|false` and where an existing claim would be named.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterFilePersistence {
    /// Dotted path of the boolean that enables persistence.
    pub enabled: String,
    /// Dotted paths that name existing claims; any set one means `existing-claim`.
    #[serde(default)]
    pub existing_claims: Vec<String>,
}

/// A part of the application.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Component {
    pub name: String,
    /// Label selector that finds its workloads and pods (`fateMoudle=mysql`).
    pub selector: String,
    /// Namespace, when the component does not live in the application's namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The component keeps data that must survive the upgrade.
    #[serde(default)]
    pub data: bool,
    /// Readiness and PDBs of this component are checked before an upgrade.
    #[serde(default = "yes")]
    pub required: bool,
    /// The workload that runs it, per version range.
    #[serde(default)]
    pub workloads: Vec<Workload>,
    /// Version range in which the component is deployed anew on fresh claims: its data must be
    /// copied over (Kubeflow's MinIO in 1.7).
    #[serde(default)]
    pub redeployed_in: Option<Spanned<String>>,
    /// The database this component serves, for backups and schema scripts.
    #[serde(default)]
    pub database: Option<Database>,
}

fn yes() -> bool {
    true
}

/// The workload of a component within a version range.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Workload {
    /// Version range (`<1.9.0`, `>=1.9.0`, `*`).
    pub versions: Spanned<String>,
    pub kind: WorkloadKind,
    pub name: String,
    /// Claims a Deployment (or a pod template) mounts by name when the chart creates them.
    #[serde(default)]
    pub claims: Vec<String>,
    /// volumeClaimTemplates of a StatefulSet: claims are `<template>-<name>-<ordinal>`.
    #[serde(default)]
    pub claim_templates: Vec<String>,
    /// Replicas of a StatefulSet, for claim names.
    #[serde(default = "one")]
    pub replicas: u32,
    /// The one replica of a shared StatefulSet this component becomes (two Deployments
    /// `nodemanager-0` and `nodemanager-1` become ordinals 0 and 1 of `nodemanager`).
    #[serde(default)]
    pub ordinal: Option<u32>,
}

fn one() -> u32 {
    1
}

/// Kinds of workload a component can run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    /// The short name kubectl takes (`deploy/mysql`).
    pub fn short(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deploy",
            WorkloadKind::StatefulSet => "sts",
            WorkloadKind::DaemonSet => "ds",
        }
    }
}

/// A database served by a component.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Database {
    /// `mysql` (MySQL and MariaDB).
    pub engine: String,
    /// Schemas holding the application's data.
    pub databases: Vec<String>,
    /// Tables whose rows are version-specific and regenerated by the new version; a
    /// data-only dump for a reinstall leaves them out.
    #[serde(default)]
    pub version_specific_tables: Vec<String>,
    /// Where the data directory is mounted in the container.
    #[serde(default)]
    pub data_dir: Option<String>,
}

/// Verdicts, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Lossless as planned.
    Safe,
    /// Lossless only if the listed steps run first.
    NeedsSteps,
    /// Nothing in the suite prevents the loss.
    DataLoss,
    /// Not possible.
    Blocked,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Safe => "safe",
            Outcome::NeedsSteps => "needs-steps",
            Outcome::DataLoss => "data-loss",
            Outcome::Blocked => "blocked",
        }
    }
}

/// How the target relates to the running version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Any move to a higher version.
    Upgrade,
    /// Same major and minor, higher patch.
    PatchUpgrade,
    /// Higher major or minor.
    MinorUpgrade,
    /// Any move to a lower version.
    Downgrade,
    /// Same major and minor, lower patch.
    PatchDowngrade,
    /// Lower major or minor.
    MinorDowngrade,
    /// The same version.
    Same,
}

impl Change {
    /// Classifies the move from `from` to `to`.
    pub fn between(from: &Version, to: &Version) -> Change {
        use std::cmp::Ordering::*;
        // A target written as a major (or major.minor) means that release, its missing parts
        // zero: `v1` while v1.5.3 runs is a move back to v1.0.0, never "already there" (the
        // upgrade tools the profiles describe install what is named, not the newest of a line).
        let same_line = from.major == to.major && from.minor.unwrap_or(0) == to.minor.unwrap_or(0);
        match from.cmp_numbers(to) {
            Equal => Change::Same,
            Less if same_line => Change::PatchUpgrade,
            Less => Change::MinorUpgrade,
            Greater if same_line => Change::PatchDowngrade,
            Greater => Change::MinorDowngrade,
        }
    }

    /// True when `self` (as written in an edge) accepts the actual change.
    pub fn accepts(self, actual: Change) -> bool {
        match self {
            Change::Upgrade => matches!(actual, Change::PatchUpgrade | Change::MinorUpgrade),
            Change::Downgrade => matches!(actual, Change::PatchDowngrade | Change::MinorDowngrade),
            other => other == actual,
        }
    }
}

/// An upgrade edge: which moves it covers and what they come to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Edge {
    /// Version range of the running version.
    pub from: Spanned<String>,
    /// Version range of the target.
    pub to: Spanned<String>,
    /// Persistence modes the edge applies to (empty: all).
    #[serde(default)]
    pub modes: Vec<Mode>,
    /// Kind of move the edge applies to (absent: any).
    #[serde(default)]
    pub change: Option<Change>,
    pub outcome: Outcome,
    /// Why, in the words of the application's own documentation.
    pub reason: String,
    /// What makes the move lossless (for `needs-steps`) or what to do instead.
    #[serde(default)]
    pub workaround: Option<String>,
    /// Steps this edge needs, before the upgrade itself.
    #[serde(default)]
    pub steps: Vec<StepTemplate>,
    /// Steps once the data of a component deployed anew has been copied into its new claims
    /// and it runs again (relations re-created), before the rest of the upgrade.
    #[serde(default)]
    pub after_copy: Vec<StepTemplate>,
    /// The upgrade is done by reinstalling, not in place (the workaround replaces it).
    #[serde(default)]
    pub reinstall: bool,
}

/// A runbook step with placeholders (`{namespace}`, `{from}`, `{to}`, `{workload:mysql}`,
/// `{pod:mysql}`, `{instance}`, `{database:mysql}`, `{ignore-tables:mysql}`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StepTemplate {
    pub description: String,
    pub command: String,
}

/// Steps that frame every upgrade of an application.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Runbook {
    /// Before anything else (backups).
    #[serde(default)]
    pub before: Vec<StepTemplate>,
    /// The upgrade itself, in the application's own tooling.
    #[serde(default)]
    pub upgrade: Vec<StepTemplate>,
    /// After the upgrade (verification).
    #[serde(default)]
    pub after: Vec<StepTemplate>,
}

/// A database image pinned by the chart, per version range.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImagePin {
    pub component: String,
    /// Image name without registry or tag (`mysql`).
    pub image: String,
    pub tags: Vec<PinnedTag>,
}

/// The tag a chart pins within a version range.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PinnedTag {
    pub versions: Spanned<String>,
    pub tag: String,
}

/// Where the schema scripts live and where they run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SqlScripts {
    /// Folder under `sql/`.
    pub dir: String,
    /// Component whose database the scripts change.
    pub component: String,
    /// Who runs the scripts when the application's own upgrade does (KubeFATE's upgrade Job
    /// during `kubefate cluster update`); absent, the runbook runs them with
    /// `kubectl upgrade-migrate-db apply`.
    #[serde(default)]
    pub applied_by: Option<String>,
    /// What the schema looks like at known versions, for `upgrade-migrate-db baseline` of a
    /// database older than the history table.
    #[serde(default)]
    pub fingerprints: Vec<Fingerprint>,
}

/// Tables and columns that tell one schema version from its neighbours: everything in
/// `present` exists, nothing in `absent` does. Entries are `table` or `table.column`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Fingerprint {
    pub version: Spanned<String>,
    #[serde(default)]
    pub present: Vec<String>,
    #[serde(default)]
    pub absent: Vec<String>,
}

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No built-in profile has that name.
    #[error(
        "unknown profile {name:?} (built-in profiles: {known}); use --profile-file for your own"
    )]
    Unknown { name: String, known: String },
    /// The file could not be read.
    #[error("cannot read profile {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not have a profile's shape.
    #[error("{origin}:{line}: {message}")]
    Syntax {
        origin: String,
        line: u64,
        message: String,
    },
    /// The profile parsed but says something impossible.
    #[error("{origin}:{line}: {message}")]
    Invalid {
        origin: String,
        line: u64,
        message: String,
    },
}

impl Profile {
    /// Parses and validates a profile; `origin` names it in errors (a path or `builtin:fate`).
    pub fn from_yaml(origin: &str, text: &str) -> Result<Profile, ProfileError> {
        let profile: Profile = serde_saphyr::from_str(text).map_err(|e| ProfileError::Syntax {
            origin: origin.to_string(),
            line: e.location().map_or(0, |l| l.line()),
            message: crate::yaml::one_line(&e),
        })?;
        validate::validate(&profile).map_err(|(line, message)| ProfileError::Invalid {
            origin: origin.to_string(),
            line,
            message,
        })?;
        Ok(profile)
    }

    /// Loads a user's profile file.
    pub fn from_file(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Profile::from_yaml(&path.display().to_string(), &text)
    }

    /// The application's name for sentences: `shortName`, else `name`.
    pub fn display_name(&self) -> &str {
        self.short_name.as_deref().unwrap_or(&self.name)
    }

    /// The component with this name.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// Known versions, parsed (validation guarantees they parse).
    pub fn known_versions(&self) -> Vec<Version> {
        self.versions
            .iter()
            .filter_map(|v| Version::parse(&v.value).ok())
            .collect()
    }

    /// Checks that a version is one the profile knows: listed, covered by a partial entry, or
    /// newer than all when the profile accepts future versions.
    pub fn check_version(&self, version: &Version) -> Result<(), String> {
        let known = self.known_versions();
        if known.iter().any(|k| k.covers(version) || version.covers(k)) {
            return Ok(());
        }
        if self.future_versions
            && known
                .last()
                .is_some_and(|last| version.cmp_numbers(last).is_gt())
        {
            return Ok(());
        }
        let list: Vec<&str> = self.versions.iter().map(|v| v.value.as_str()).collect();
        Err(format!(
            "unknown {} version {} (known: {}{})",
            self.name,
            version.raw,
            list.join(", "),
            if self.future_versions {
                ", and newer"
            } else {
                ""
            }
        ))
    }

    /// The first edge that covers the move under the mode.
    pub fn edge(&self, from: &Version, to: &Version, mode: Mode) -> Option<&Edge> {
        let change = Change::between(from, to);
        self.edges.iter().find(|edge| {
            range_matches(&edge.from.value, from)
                && range_matches(&edge.to.value, to)
                && (edge.modes.is_empty() || edge.modes.contains(&mode))
                && edge.change.is_none_or(|c| c.accepts(change))
        })
    }
}

impl Component {
    /// The workload that runs this component at `version`.
    pub fn workload_at(&self, version: &Version) -> Option<&Workload> {
        self.workloads
            .iter()
            .find(|w| range_matches(&w.versions.value, version))
    }

    /// True when `version` lies in the range where this component is deployed anew.
    pub fn redeployed_at(&self, version: &Version) -> bool {
        self.redeployed_in
            .as_ref()
            .is_some_and(|r| range_matches(&r.value, version))
    }
}

impl Workload {
    /// The claims the chart gives this workload: named claims of a Deployment, or
    /// `<template>-<statefulset>-<ordinal>` for each template and replica.
    pub fn chart_claims(&self) -> Vec<String> {
        let mut names = self.claims.clone();
        for template in &self.claim_templates {
            match self.ordinal {
                Some(ordinal) => names.push(statefulset_claim(template, &self.name, ordinal)),
                None => names.extend(statefulset_claims([template], &self.name, self.replicas)),
            }
        }
        names
    }
}

/// Every claim a StatefulSet with these templates expects for ordinals `0..replicas`.
pub fn statefulset_claims<T: AsRef<str>>(
    templates: impl IntoIterator<Item = T>,
    statefulset: &str,
    replicas: u32,
) -> Vec<String> {
    templates
        .into_iter()
        .flat_map(|t| {
            let t = t.as_ref().to_string();
            (0..replicas).map(move |o| statefulset_claim(&t, statefulset, o))
        })
        .collect()
}

/// The claim name a StatefulSet expects: `<template>-<statefulset>-<ordinal>`.
pub fn statefulset_claim(template: &str, statefulset: &str, ordinal: u32) -> String {
    format!("{template}-{statefulset}-{ordinal}")
}

/// Matches a version against a range written in a profile (semver requirements; `*` for all).
pub fn range_matches(range: &str, version: &Version) -> bool {
    parse_range(range).is_ok_and(|req| req.matches(&version.to_semver()))
}

/// Parses a profile range; a leading `v` on versions is accepted (`<=v1.7.1`).
pub fn parse_range(range: &str) -> Result<semver::VersionReq, semver::Error> {
    let cleaned: String = range
        .split(',')
        .map(|part| {
            let part = part.trim();
            let ops = part
                .find(|c: char| c.is_ascii_digit() || c == 'v' || c == '*')
                .unwrap_or(0);
            let (op, rest) = part.split_at(ops);
            format!("{op}{}", rest.strip_prefix('v').unwrap_or(rest))
        })
        .collect::<Vec<_>>()
        .join(", ");
    semver::VersionReq::parse(&cleaned)
}

/// Reads a dotted path (`status.runningVersion`, `mysql.existingClaim`) out of a JSON value.
pub fn field<'a>(value: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.')
        .try_fold(value, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

/// Names of all built-in profiles with their titles, for help and errors.
pub fn catalogue() -> BTreeMap<&'static str, String> {
    builtin_names()
        .into_iter()
        .filter_map(|name| builtin(name).ok().map(|p| (name, p.title)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("version")
    }

    #[test]
    fn a_partial_target_is_its_first_release() {
        assert_eq!(
            Change::between(&v("v1.5.3"), &v("v1")),
            Change::MinorDowngrade
        );
        assert_eq!(
            Change::between(&v("7.1.33"), &v("7.1")),
            Change::PatchDowngrade
        );
        assert_eq!(Change::between(&v("v1.0.0"), &v("v1")), Change::Same);
        assert_eq!(Change::between(&v("1.7"), &v("1.7")), Change::Same);
        assert_eq!(
            Change::between(&v("v1.5.3"), &v("v2")),
            Change::MinorUpgrade
        );
    }
}
