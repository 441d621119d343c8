//! Rehearsal of KubeFATE v1.7.2 → v1.8.0 with the chart upgraded by plain Helm
//! (tests/rehearsals/fate-helm.yaml, profile tests/rehearsals/profiles/fate-helm.yaml): Helm
//! runs no schema scripts, so the runbook's own steps do — a fresh `upgrade-backup dump` once
//! the new pods run, then `kubectl upgrade-migrate-db apply --backup` of that dump — then MySQL
//! compared table by table, files byte for byte, and `kubectl upgrade-verify verify`; once more
//! with the apply killed and run again.

use upgrade_e2e::harness::{rehearse, require_mariadb};

#[test]
fn fate_1_7_2_to_1_8_0_upgraded_with_helm_schema_by_migrate_db() {
    require_mariadb();
    rehearse("fate-helm", false);
}

#[test]
fn fate_1_7_2_to_1_8_0_upgraded_with_helm_with_the_apply_killed_and_run_again() {
    require_mariadb();
    rehearse("fate-helm", true);
}
