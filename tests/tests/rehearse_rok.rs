//! Rehearsal of Rok v1 → v2 (tests/rehearsals/rok.yaml): the check's runbook run as printed on a
//! fresh simulated cluster — re-create the rok-tools StatefulSet whose new spec changes immutable
//! fields, quiesce the operator and the CSI controller, apply disk manager, kmod, cluster and
//! operator from the user's GitOps tree in the guide's order (the operator stand-in runs the
//! rok-upgrade Job), resume — then rok-tools' files compared byte for byte and
//! `kubectl upgrade-verify verify`; once more with the quiesce killed and run again.

use upgrade_e2e::harness::rehearse;

#[test]
fn rok_v1_to_v2() {
    rehearse("rok", false);
}

#[test]
fn rok_v1_to_v2_with_the_quiesce_killed_and_run_again() {
    rehearse("rok", true);
}
