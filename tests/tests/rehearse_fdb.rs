//! Rehearsal of FoundationDB 7.1 → 7.3 (tests/rehearsals/fdb.yaml): the check's runbook run as
//! printed on a fresh simulated cluster — the version change through kubectl, the operator
//! stand-in bouncing the processes, the restart of a process group left on the old version by its
//! condition — then the storage and log processes' files compared byte for byte and
//! `kubectl upgrade-verify verify`; once more with the restart killed and run again.

use upgrade_e2e::harness::rehearse;

#[test]
fn foundationdb_7_1_to_7_3() {
    rehearse("fdb", false);
}

#[test]
fn foundationdb_7_1_to_7_3_with_the_restart_killed_and_run_again() {
    rehearse("fdb", true);
}
