//! Rehearsal of KubeFATE v1.8.0 → v1.9.0 on a storage class (tests/rehearsals/fate.yaml): the
//! check's runbook run as printed on a fresh simulated cluster — back up, retain, stop and adopt
//! the five claims under the StatefulSets' names, `kubefate cluster update` played from
//! fate-1.9.0.yaml with its upgrade Job running the schema chain once, restore the policies —
//! then MySQL compared table by table and every component's files byte for byte, and
//! `kubectl upgrade-verify verify`; once more with an adoption killed and run again.

use upgrade_e2e::harness::{rehearse, require_mariadb};

#[test]
fn fate_1_8_0_to_1_9_0_on_a_storage_class() {
    require_mariadb();
    rehearse("fate", false);
}

#[test]
fn fate_1_8_0_to_1_9_0_with_an_adoption_killed_and_run_again() {
    require_mariadb();
    rehearse("fate", true);
}
