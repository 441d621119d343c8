//! The journal's entries: what migrate-pv records in its ConfigMap before it takes an
//! operation's steps, so that an interrupted run can be resumed, shown by `status` and undone
//! by `rollback` even after the objects it started from are gone. The types live in
//! [`upgrade_shared::pv_journal`], where `upgrade-verify` reads them too.

pub use upgrade_shared::pv_journal::{CopyProof, Entry, JOURNAL, NAME, adopt_key, copy_key};
