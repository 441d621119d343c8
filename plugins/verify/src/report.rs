//! What `verify` and `wait` report: the verdict, the component table (old → new) and every
//! difference named with its object and both values. `-o json|yaml` prints this document.

use serde::Serialize;

/// The outcome, mapped to the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Everything recorded is still there and the upgrade is complete (exit 0).
    Verified,
    /// At least one difference (exit 1).
    Differences,
    /// No difference found, but a part could not be checked (exit 2).
    Unverified,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Verified => "verified",
            Verdict::Differences => "differences",
            Verdict::Unverified => "unverified",
        }
    }

    /// The exit code of the suite for this verdict.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Verified => upgrade_shared::exit::OK,
            Verdict::Differences => upgrade_shared::exit::FINDINGS,
            Verdict::Unverified => upgrade_shared::exit::ERROR,
        }
    }
}

/// One thing that is not as recorded or not as it should be after the upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// Stable code (`volume-lost`, `rows-lost`, `crash-looping`, …).
    pub code: String,
    /// The object, as kubectl names it (`pv/pvc-1234`, `deploy/mysql`, `table eggroll_meta.t_job`).
    pub object: String,
    /// One line saying what is wrong.
    pub message: String,
    /// The recorded (or expected) value.
    pub recorded: String,
    /// The value now.
    pub now: String,
}

/// One row of the component table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentRow {
    pub name: String,
    /// Its workloads now (`sts/mysql`).
    pub workloads: String,
    /// Version at record time.
    pub old: String,
    /// Version now.
    pub new: String,
    /// Ready pods or replicas now, `ready/desired`.
    pub ready: String,
    /// `ok`, or the first difference's code on this component.
    pub state: String,
}

/// How much was compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checked {
    pub components: usize,
    pub workloads: usize,
    pub volumes: usize,
    pub tables: usize,
    pub custom_resources: usize,
    pub jobs: usize,
    pub pods: usize,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub verdict: Verdict,
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// When the baseline was recorded.
    pub recorded_at: String,
    /// The application's version in the baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The version asked for with `--to`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The application's version now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub components: Vec<ComponentRow>,
    pub differences: Vec<Difference>,
    /// Parts that could not be checked, and why.
    pub unverified: Vec<String>,
    /// Facts worth knowing that are not differences (restarts, shrunken volumes).
    pub notes: Vec<String>,
    pub checked: Checked,
}
