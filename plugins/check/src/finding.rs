//! What the check answers: findings with their evidence, runbook steps and the report that
//! holds them. Rules, the runbook and rendering all speak these types; none of them owns them.

use std::collections::BTreeMap;

use serde::Serialize;
use upgrade_shared::profile::{Mode, Outcome};

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
    /// The persistence mode whose upgrade edge decides the verdict.
    pub persistence: Mode,
    /// The mode of each component that holds data, as found.
    pub persistence_by_component: BTreeMap<String, Mode>,
    pub findings: Vec<Finding>,
    pub steps: Vec<Step>,
}
