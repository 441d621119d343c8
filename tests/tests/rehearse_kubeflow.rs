//! Rehearsal of the Charmed Kubeflow 1.6 → 1.7 MinIO upgrade (tests/rehearsals/kubeflow.yaml):
//! the check's runbook run as printed on a fresh simulated cluster — retain, remove and redeploy
//! MinIO, copy its objects into the new claim, clean up — then every MinIO file compared byte for
//! byte and `kubectl upgrade-verify verify`; once more with the copy killed and run again.

use upgrade_e2e::harness::rehearse;

#[test]
fn kubeflow_minio_1_6_to_1_7() {
    rehearse("kubeflow", false);
}

#[test]
fn kubeflow_minio_1_6_to_1_7_with_the_copy_killed_and_run_again() {
    rehearse("kubeflow", true);
}
