//! The Kubeflow MinIO upgrade with the hand-written runbook of
//! tests/rehearsals/profiles/kubeflow-by-hand.yaml (what the built-in profile's should come to),
//! passing as a rehearsal: every step, the data, and `kubectl upgrade-verify verify`.

use upgrade_e2e::harness::rehearse;

#[test]
fn kubeflow_minio_by_hand() {
    rehearse("kubeflow-by-hand", false);
}

#[test]
fn kubeflow_minio_by_hand_with_the_copy_killed_and_run_again() {
    rehearse("kubeflow-by-hand", true);
}
