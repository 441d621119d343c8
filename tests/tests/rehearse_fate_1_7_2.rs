//! Rehearsal of KubeFATE v1.7.2 → v1.8.0 on existing claims (tests/rehearsals/fate-1.7.2.yaml):
//! the check's runbook run as printed on a fresh simulated cluster — back up, the Helm upgrade
//! played from fate-1.8.0-existing-pvc-target.yaml, KubeFATE's upgrade Job running the 1.7.2 → 1.8.0 schema script — then MySQL
//! compared table by table and every component's files byte for byte, and
//! `kubectl upgrade-verify verify`; once more with the backup killed and run again.

use upgrade_e2e::harness::{rehearse, require_mariadb};

#[test]
fn fate_1_7_2_to_1_8_0_on_existing_claims() {
    require_mariadb();
    rehearse("fate-1.7.2", false);
}

#[test]
fn fate_1_7_2_to_1_8_0_with_the_backup_killed_and_run_again() {
    require_mariadb();
    rehearse("fate-1.7.2", true);
}
