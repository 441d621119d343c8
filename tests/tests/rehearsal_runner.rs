//! The rehearsal runner end to end, on a runbook every step of which exists today
//! (tests/rehearsals/kubeflow-by-hand.yaml): a baseline, suite plugins found through kubectl's
//! own plugin lookup with `--yes` added, plain kubectl steps, Juju's steps played from the 1.7
//! manifest, the retain killed with SIGKILL once it started changing the cluster and run again, every MinIO
//! file compared byte for byte, and verify run at the end. What these tests hold is the runner's
//! behaviour; whether the upgrade itself passes is `rehearse_kubeflow_by_hand`.

use upgrade_e2e::harness::plugin_binary;
use upgrade_e2e::rehearsal::definition::Kill;
use upgrade_e2e::rehearsal::{self, Outcome, Verify};

fn run(kill_at: Option<&str>) -> (rehearsal::Report, String) {
    let def = rehearsal::load("kubeflow-by-hand").expect("definition");
    let dir = plugin_binary("migrate-pv")
        .parent()
        .expect("target dir")
        .to_path_buf();
    let mut opts = rehearsal::Options::new(dir);
    opts.kill = kill_at.is_some();
    opts.kill_at = kill_at.map(|step| Kill {
        step: step.to_string(),
        after_writes: 1,
    });
    let mut out = Vec::new();
    let report = rehearsal::rehearse(&def, &opts, &mut out).expect("rehearsal runs");
    let printed = String::from_utf8_lossy(&out).into_owned();
    println!("{printed}");
    (report, printed)
}

#[test]
fn every_step_runs_as_printed_and_the_data_is_compared() {
    let (report, printed) = run(None);
    assert!(!report.steps.is_empty(), "{printed}");
    for s in &report.steps {
        assert_eq!(s.outcome, Outcome::Done, "step {}: {printed}", s.number);
        assert!(!s.killed);
    }
    let retain = &report.steps[1];
    assert!(
        retain
            .command
            .starts_with("kubectl upgrade-migrate-pv retain")
    );
    assert_eq!(
        retain.ran,
        [format!(
            "kubectl {} --yes",
            &retain.command["kubectl ".len()..]
        )],
        "a plugin step runs as printed, with --yes added because it asks"
    );
    let remove = &report.steps[2];
    assert_eq!(
        remove.ran,
        [
            "kubectl delete statefulset/minio -n kubeflow --cascade=foreground --ignore-not-found --wait=true --timeout=300s"
        ],
        "{printed}"
    );
    assert!(report.comparison.differences.is_empty(), "{printed}");
    assert_eq!(report.comparison.summary.len(), 1, "{printed}");
    assert!(
        report.comparison.summary[0].contains("7 files (570 bytes) equal byte for byte"),
        "{printed}"
    );
    assert!(
        matches!(report.verify, Verify::Passed | Verify::Failed(_)),
        "verify runs once the runbook has: {printed}"
    );
}

#[test]
fn a_killed_retain_is_run_again_and_finishes() {
    let (report, printed) = run(Some("kubectl upgrade-migrate-pv retain"));
    let killed: Vec<_> = report.steps.iter().filter(|s| s.killed).collect();
    assert_eq!(killed.len(), 1, "{printed}");
    assert!(
        killed[0]
            .command
            .starts_with("kubectl upgrade-migrate-pv retain")
    );
    assert_eq!(killed[0].ran.len(), 2, "run, then run again: {printed}");
    assert!(printed.contains("killed (SIGKILL) after its 1 change request(s)"));
    for s in &report.steps {
        assert_eq!(s.outcome, Outcome::Done, "step {}: {printed}", s.number);
    }
    assert!(report.comparison.differences.is_empty(), "{printed}");
    assert_eq!(report.comparison.summary.len(), 1, "{printed}");
}
