//! The common crate of the kubectl-upgrade plugins: what every plugin needs to connect, print,
//! exit and reason about versions and applications the same way.

pub mod api;
pub mod backup_manifest;
pub mod cluster;
pub mod completion;
pub mod deadline;
pub mod exec;
pub mod exit;
pub mod flags;
pub mod journal;
pub mod list;
pub mod mysql;
pub mod names;
pub mod output;
pub mod profile;
pub mod progress;
pub mod prompt;
pub mod pv_journal;
pub mod quantity;
pub mod scale;
pub mod sql;
pub mod template;
pub mod tree;
pub mod version;
pub mod volume_pod;
pub mod watch;
pub mod yaml;
