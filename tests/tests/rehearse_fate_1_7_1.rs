//! Rehearsal of KubeFATE v1.7.1 → v1.7.2, the reinstall path (tests/rehearsals/fate-1.7.1.yaml):
//! the check's runbook run as printed on a fresh simulated cluster — a data-only dump without the
//! version-specific tables, `kubefate cluster delete` and `install` played from
//! fate-1.7.2-install.yaml, the import — then every carried MySQL table compared with what v1.7.1
//! held and `kubectl upgrade-verify verify`; once more with the import killed and run again.

use upgrade_e2e::harness::{rehearse, require_mariadb};

#[test]
fn fate_1_7_1_to_1_7_2_by_reinstalling() {
    require_mariadb();
    rehearse("fate-1.7.1", false);
}

#[test]
fn fate_1_7_1_to_1_7_2_with_the_import_killed_and_run_again() {
    require_mariadb();
    rehearse("fate-1.7.1", true);
}
