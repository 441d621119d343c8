//! Rehearsals: one seed's upgrade, end to end, on a fresh simulated cluster. The cluster starts
//! from the rehearsal's scenario; the data is recorded through real `kubectl exec`; the check's
//! runbook (`kubectl upgrade-check … -o json`) is run step by step exactly as printed — suite
//! plugins through kubectl's own plugin lookup, other kubectl commands for real, the
//! application's own tools played as the definition declares; then the data is read again and
//! compared, and `kubectl upgrade-verify verify` runs when the workspace has that plugin.
//!
//! The kill variant kills the plugin of one declared step with SIGKILL once it has started
//! changing the cluster (its first create, update, patch, delete or exec request, counted by the
//! simulated API server), then runs the same command again, as a user would after a lost
//! session: the re-run must finish the step and the data must still compare equal.

pub mod command;
pub mod data;
pub mod definition;
mod run;

pub use definition::{Definition, load, names};
pub use run::{Options, Outcome, Report, StepReport, Verify, rehearse};
