//! Plan tests: the check's verdicts, findings and runbooks from fixtures, no cluster.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::PathBuf;

use kubectl_upgrade_check::plan::{self, Options, PlanError, Report};
use kubectl_upgrade_check::{offline_snapshot, snapshot::Snapshot};
use upgrade_shared::profile::{self, Mode, Outcome};
use upgrade_shared::version::Version;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn check(profile: &str, snapshot: &Snapshot, from: Option<&str>, to: &str) -> Report {
    try_check(profile, snapshot, from, to, &[]).unwrap()
}

fn try_check(
    profile: &str,
    snapshot: &Snapshot,
    from: Option<&str>,
    to: &str,
    targets: &[&str],
) -> Result<Report, PlanError> {
    try_check_profile(
        &profile::builtin(profile).unwrap(),
        snapshot,
        from,
        to,
        targets,
    )
}

/// The FATE profile as if its upgrade tool ran no schema scripts (the chart upgraded with
/// plain Helm): the runbook must run them itself.
fn fate_without_applied_by() -> profile::Profile {
    let (_, text) = profile::BUILTIN.iter().find(|(n, _)| *n == "fate").unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("appliedBy:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let p = profile::Profile::from_yaml("fate-without-applied-by", &text).unwrap();
    assert!(p.sql.as_ref().unwrap().applied_by.is_none());
    p
}

fn try_check_profile(
    profile: &profile::Profile,
    snapshot: &Snapshot,
    from: Option<&str>,
    to: &str,
    targets: &[&str],
) -> Result<Report, PlanError> {
    let targets = targets
        .iter()
        .flat_map(|t| {
            let path = fixture(t);
            upgrade_shared::yaml::read_objects(&path)
                .unwrap()
                .into_iter()
                .map(move |o| (path.display().to_string(), o))
        })
        .collect();
    plan::check(
        profile,
        snapshot,
        &Options {
            from: from.map(v),
            to: Some(v(to)),
            targets,
        },
    )
}

/// A KubeFATE cluster.yaml for a version and a persistence mode.
fn cluster_file(version: &str, mode: Mode) -> Snapshot {
    let persistence = match mode {
        Mode::None => "persistence: false\n",
        Mode::ExistingClaim => "persistence: true\nmysql:\n  existingClaim: fate-mysql\n",
        Mode::StorageClass => "persistence: true\nmysql:\n  storageClass: nfs-client\n",
    };
    let text = format!(
        "name: fate-9999\nnamespace: fate-9999\nchartName: fate\nchartVersion: {version}\nimageTag: {}-release\n{persistence}",
        version.trim_start_matches('v')
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, text).unwrap();
    offline_snapshot(&[path], None).unwrap()
}

fn codes(report: &Report) -> Vec<&str> {
    report.findings.iter().map(|f| f.code.as_str()).collect()
}

fn commands(report: &Report) -> Vec<&str> {
    report.steps.iter().map(|s| s.command.as_str()).collect()
}

/// Both KubeFATE matrices and the no-persistence case, cell by cell. "yes" cells are `safe`;
/// "no" cells are never safe: either the suite's steps make them lossless (`needs-steps`) or
/// nothing does (`data-loss`).
#[test]
fn every_cell_of_the_kubefate_matrices() {
    use Outcome::*;
    let froms = ["v1.7.0", "v1.7.1", "v1.7.2", "v1.8.0", "v1.9.0"];
    let tos = ["v1.7.2", "v1.8.0", "v1.9.0", "v1.10.0"];
    // Case 1: existing claims. ≤ v1.7.1 is "no" (mysql:8 downgrade; dump/reinstall/import).
    let existing = |from: &str, _to: &str| if from <= "v1.7.1" { NeedsSteps } else { Safe };
    // Case 2: storage class. v1.7.2 → v1.8.0 and v1.9.0 → future are "yes"; into v1.9.0+ from
    // below is "no" (claims of Deployments turned StatefulSets), fixed by adopting volumes.
    let storage = |from: &str, to: &str| match (from, to) {
        (f, _) if f <= "v1.7.1" => NeedsSteps,
        ("v1.7.2", "v1.8.0") => Safe,
        ("v1.9.0", _) => Safe,
        _ => NeedsSteps,
    };
    let mut cells = 0;
    for from in froms {
        for to in tos.iter().filter(|t| v(t).cmp_numbers(&v(from)).is_gt()) {
            for (mode, expected) in [
                (Mode::ExistingClaim, existing(from, to)),
                (Mode::StorageClass, storage(from, to)),
                (Mode::None, DataLoss),
            ] {
                let report = check("fate", &cluster_file(from, mode), None, to);
                assert_eq!(report.persistence, mode, "{from} → {to}");
                assert_eq!(
                    report.verdict,
                    expected,
                    "{from} → {to} ({}): {:#?}",
                    mode.as_str(),
                    report.findings
                );
                assert_eq!(report.from, *from);
                assert_eq!(report.to, *to);
                cells += 1;
            }
        }
    }
    assert_eq!(cells, 3 * 14, "every cell of the matrices was checked");
}

#[test]
fn storage_class_into_v1_9_0_adopts_every_volume_under_its_statefulset_claim() {
    let report = check(
        "fate",
        &cluster_file("v1.8.0", Mode::StorageClass),
        None,
        "v1.9.0",
    );
    assert_eq!(report.verdict, Outcome::NeedsSteps);
    let adopt: Vec<&str> = commands(&report)
        .into_iter()
        .filter(|c| c.contains(" adopt "))
        .collect();
    // One command for the five claims: migrate-pv adopts them in parallel and waits for the
    // bindings once, instead of one binder resync (15 s on a real cluster) after another.
    assert_eq!(
        adopt,
        [
            "kubectl upgrade-migrate-pv adopt mysql-data=data-mysql-0 python-data=python-data-python-0 client-data=client-data-client-0 nodemanager-0-data=data-dir-nodemanager-0 nodemanager-1-data=data-dir-nodemanager-1 -n fate-9999",
        ]
    );
    let cmds = commands(&report);
    let pos = |needle: &str| {
        cmds.iter()
            .position(|c| c.contains(needle))
            .unwrap_or_else(|| panic!("no step {needle}: {cmds:#?}"))
    };
    assert!(pos("upgrade-verify record") < pos("upgrade-backup dump"));
    assert!(pos("upgrade-backup dump") < pos("retain"));
    assert!(pos("retain") < pos("scale deploy/mysql --replicas=0"));
    assert!(
        pos("scale deploy/mysql --replicas=0")
            < pos("wait --for=delete pod -l fateMoudle=mysql -n fate-9999 --timeout=5m")
    );
    // Every workload is stopped and its pods gone before the one adoption.
    for module in [
        "mysql",
        "python",
        "client",
        "nodemanager-0",
        "nodemanager-1",
    ] {
        assert!(
            pos(&format!("wait --for=delete pod -l fateMoudle={module} "))
                < pos("adopt mysql-data"),
            "{module}: {cmds:#?}"
        );
    }
    assert!(pos("adopt mysql-data") < pos("kubefate cluster update"));
    assert!(
        report.steps[pos("kubefate cluster update")]
            .description
            .ends_with(
                "KubeFATE's upgrade Job runs the schema scripts in order: sql/fate/1.8.0-1.9.0.sql"
            ),
        "{:#?}",
        report.steps
    );
    assert!(
        !cmds.iter().any(|c| c.contains("upgrade-migrate-db")),
        "KubeFATE's upgrade Job runs the scripts; a step of the runbook would run them twice: {cmds:#?}"
    );
    assert_eq!(
        cmds[pos("upgrade-backup dump")],
        "kubectl upgrade-backup dump -n fate-9999 --profile fate --output fate-9999-v1.8.0.sql"
    );
    assert!(pos("kubefate cluster update") < pos("upgrade-verify wait"));
    assert!(pos("upgrade-verify wait") < pos("upgrade-verify verify"));
    assert!(pos("upgrade-verify verify") < pos("restore-policy"));
    assert!(codes(&report).contains(&"deployment-to-statefulset"));
}

/// The backup taken before the upgrade is stale by the time the schema scripts run (the new
/// version's pods may write as they start), and `upgrade-migrate-db apply --backup` refuses a
/// backup taken before the database's last write. Where the runbook runs the scripts itself,
/// it dumps the database again once the new pods run, right before the scripts, and hands that
/// dump to apply; the first backup stays the way back from the whole upgrade.
#[test]
fn the_runbook_dumps_the_database_again_right_before_its_schema_scripts() {
    let report = try_check_profile(
        &fate_without_applied_by(),
        &cluster_file("v1.8.0", Mode::StorageClass),
        None,
        "v1.9.0",
        &[],
    )
    .unwrap();
    let cmds = commands(&report);
    let pos = |needle: &str| {
        cmds.iter()
            .position(|c| c.contains(needle))
            .unwrap_or_else(|| panic!("no step {needle}: {cmds:#?}"))
    };
    let apply = pos("upgrade-migrate-db apply");
    assert_eq!(
        cmds[apply],
        "kubectl upgrade-migrate-db apply -n fate-9999 --profile fate --from v1.8.0 --to v1.9.0 --backup fate-9999-v1.8.0-before-schema.sql.manifest.json"
    );
    assert_eq!(
        cmds[apply - 1],
        "kubectl upgrade-backup dump -n fate-9999 --profile fate --output fate-9999-v1.8.0-before-schema.sql",
        "the dump apply relies on is taken right before it"
    );
    assert_eq!(
        cmds[apply - 2],
        "kubectl rollout status sts/mysql -n fate-9999 --timeout=10m",
        "once the new database runs"
    );
    assert!(pos("kubefate cluster update") < apply - 2);
    assert!(
        pos("upgrade-backup dump -n fate-9999 --profile fate --output fate-9999-v1.8.0.sql")
            < pos("kubefate cluster update"),
        "the backup of the whole upgrade is still taken first"
    );
}

#[test]
fn skipping_v1_8_0_chains_both_schema_scripts() {
    let report = check(
        "fate",
        &cluster_file("v1.7.2", Mode::ExistingClaim),
        None,
        "v1.9.0",
    );
    assert_eq!(report.verdict, Outcome::Safe);
    let sql = report
        .steps
        .iter()
        .find(|s| s.command.starts_with("kubefate cluster update"))
        .unwrap();
    assert!(
        sql.description
            .contains("sql/fate/1.7.2-1.8.0.sql, sql/fate/1.8.0-1.9.0.sql"),
        "{}",
        sql.description
    );
    assert!(
        !commands(&report).iter().any(|c| c.contains("adopt")),
        "existing claims are reused as they are"
    );
}

#[test]
fn v1_7_1_is_moved_by_data_only_dump_reinstall_and_import() {
    let snapshot = offline_snapshot(&[fixture("fate-1.7.1-existing-claim.yaml")], None).unwrap();
    let report = check("fate", &snapshot, None, "v1.8.0");
    assert_eq!(
        report.from, "v1.7.1",
        "version read from the python image tag"
    );
    assert_eq!(
        report.persistence,
        Mode::ExistingClaim,
        "a claim without Helm's marks is the user's own"
    );
    assert_eq!(report.verdict, Outcome::NeedsSteps);
    let downgrade = report
        .findings
        .iter()
        .find(|f| f.code == "database-image-downgrade")
        .expect("floating tag finding");
    assert!(
        downgrade.message.contains("mysql:8 (running)"),
        "{}",
        downgrade.message
    );
    assert!(
        downgrade.message.contains("8.0.28"),
        "{}",
        downgrade.message
    );
    let cmds = commands(&report);
    let dump = cmds
        .iter()
        .find(|c| c.contains("--data-only"))
        .expect("data-only dump");
    assert_eq!(
        *dump,
        "kubectl upgrade-backup dump -n fate-10000 --profile fate --data-only --output fate-10000-v1.7.1-data.sql",
        "with --profile, --data-only leaves out the profile's version-specific tables"
    );
    assert!(
        cmds.iter()
            .any(|c| c.starts_with("kubefate cluster delete fate-10000"))
    );
    assert!(cmds.contains(
        &"kubectl upgrade-backup restore fate-10000-v1.7.1-data.sql -n fate-10000 --profile fate"
    ));
    assert!(
        !cmds.contains(&"kubefate cluster update -f cluster.yaml"),
        "no in-place update on a reinstall"
    );
    let full = cmds
        .iter()
        .position(|c| c.contains("upgrade-backup") && !c.contains("--data-only"))
        .unwrap();
    let delete = cmds
        .iter()
        .position(|c| c.starts_with("kubefate cluster delete"))
        .unwrap();
    assert!(
        full < delete,
        "the rollback snapshot is taken before anything is deleted"
    );
}

#[test]
fn a_floating_database_tag_blocks_an_in_place_upgrade() {
    // A custom setup: v1.7.2 charts, but someone runs mysql:8 on them.
    let mut snapshot = offline_snapshot(&[fixture("fate-1.8.0-storage-class.yaml")], None).unwrap();
    let spec = snapshot.deployments[0].spec.as_mut().unwrap();
    spec.template.spec.as_mut().unwrap().containers[0].image = Some("mysql:8".into());
    let report = check("fate", &snapshot, None, "v1.9.0");
    assert!(codes(&report).contains(&"database-image-downgrade"));
    assert_eq!(report.verdict, Outcome::Blocked);
}

#[test]
fn volumes_with_delete_policy_behind_moving_claims_are_retained_first() {
    let snapshot = offline_snapshot(&[fixture("fate-1.8.0-storage-class.yaml")], None).unwrap();
    let report = check("fate", &snapshot, None, "v1.9.0");
    assert_eq!(report.namespace, "fate-9999");
    assert_eq!(report.instance, "fate-9999");
    let delete = report
        .findings
        .iter()
        .find(|f| f.code == "reclaim-policy-delete")
        .expect("Delete finding");
    assert_eq!(
        delete.evidence,
        ["pvc/mysql-data → pv/pvc-0865a743-9bfb-4990-bd26-84b0241f0084"]
    );
    let kept = report
        .findings
        .iter()
        .find(|f| f.code == "claim-not-kept")
        .expect("keep finding");
    assert_eq!(
        kept.evidence,
        ["pvc/mysql-data"],
        "python-data carries helm.sh/resource-policy: keep"
    );
    let retain = commands(&report)
        .into_iter()
        .find(|c| c.contains(" retain "))
        .unwrap();
    assert_eq!(
        retain, "kubectl upgrade-migrate-pv retain mysql-data -n fate-9999",
        "only the Delete volume needs it"
    );
    assert!(!codes(&report).contains(&"reclaim-policy-unknown"));
}

#[test]
fn unhealthy_components_and_blocking_budgets_come_before_the_upgrade() {
    let snapshot = offline_snapshot(&[fixture("fate-unhealthy.yaml")], None).unwrap();
    let report = check("fate", &snapshot, Some("v1.7.2"), "v1.8.0");
    let c = codes(&report);
    assert!(c.contains(&"not-ready"), "{c:?}");
    assert!(c.contains(&"crash-looping"), "{c:?}");
    assert!(c.contains(&"pdb-blocks-restarts"), "{c:?}");
    assert_eq!(
        report.verdict,
        Outcome::NeedsSteps,
        "the edge itself is safe, the health is not"
    );
    let crash = report
        .findings
        .iter()
        .find(|f| f.code == "crash-looping")
        .unwrap();
    assert!(crash.message.contains("7 restarts"));
    assert!(
        crash
            .remediation
            .contains("kubectl logs pod/mysql-77f95d4844-8dfjj -c mysql -n fate-9999 --previous")
    );
    assert!(
        commands(&report)
            .contains(&"kubectl rollout status deploy/mysql -n fate-9999 --timeout=10m")
    );
}

fn fdb(conditions: bool) -> Snapshot {
    let mut snapshot = offline_snapshot(&[fixture("fdb-cluster.yaml")], None).unwrap();
    if !conditions {
        for g in snapshot.custom[0]["status"]["processGroups"]
            .as_array_mut()
            .unwrap()
        {
            g.as_object_mut().unwrap().remove("processGroupConditions");
        }
    }
    snapshot
}

#[test]
fn foundationdb_patch_minor_and_downgrade_rules() {
    let healthy = fdb(false);
    let r = check("foundationdb", &healthy, None, "7.1.35");
    assert_eq!(
        (r.verdict, r.from.as_str(), r.instance.as_str()),
        (Outcome::Safe, "7.1.33", "sample")
    );
    let r = check("foundationdb", &healthy, None, "7.3.1");
    assert_eq!(
        r.verdict,
        Outcome::NeedsSteps,
        "version-incompatible upgrade"
    );
    let cmds = commands(&r);
    let patch = cmds
        .iter()
        .position(|c| c.contains("kubectl patch foundationdbcluster sample -n fdb"))
        .expect("version change");
    let restart = cmds
        .iter()
        .position(|c| {
            *c == "kubectl upgrade-restart pods -n fdb --profile foundationdb --process-condition MissingProcesses --process-condition IncorrectCommandLine --if-any"
        })
        .expect("restart by condition");
    assert!(patch < restart);
    assert!(
        cmds[patch].contains(r#"-p '{"spec":{"version":"7.3.1"}}'"#),
        "{}",
        cmds[patch]
    );
    assert_eq!(
        check("foundationdb", &healthy, None, "8.0.0").verdict,
        Outcome::NeedsSteps,
        "major upgrade"
    );
    assert_eq!(
        check("foundationdb", &healthy, None, "7.1.20").verdict,
        Outcome::Safe,
        "older patch of the running version"
    );
    let r = check("foundationdb", &healthy, None, "6.3.25");
    assert_eq!(
        r.verdict,
        Outcome::Blocked,
        "downgrade across minor versions"
    );
    assert!(r.steps.is_empty());
}

#[test]
fn foundationdb_process_group_conditions_hold_the_upgrade() {
    let r = check("foundationdb", &fdb(true), None, "7.1.35");
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "process-group-conditions")
        .unwrap();
    assert_eq!(f.evidence, ["storage-2: MissingProcesses"]);
    assert_eq!(r.verdict, Outcome::NeedsSteps);
}

#[test]
fn kubeflow_minio_is_retained_copied_verified_and_cleaned_up() {
    let snapshot = offline_snapshot(&[fixture("kubeflow-minio.yaml")], None).unwrap();
    let r = check("kubeflow", &snapshot, None, "1.7");
    assert_eq!((r.verdict, r.from.as_str()), (Outcome::NeedsSteps, "1.6"));
    assert!(codes(&r).contains(&"redeployed-on-new-storage"));
    let cmds = commands(&r);
    let pos = |needle: &str| {
        cmds.iter()
            .position(|c| c.contains(needle))
            .unwrap_or_else(|| panic!("no {needle}: {cmds:#?}"))
    };
    assert_eq!(
        cmds[pos(" retain ")],
        "kubectl upgrade-migrate-pv retain minio-data-minio-0 -n kubeflow"
    );
    assert!(pos(" retain ") < pos("juju remove-application minio"));
    assert!(
        cmds[pos("juju deploy minio")].contains("--storage minio-data=20Gi"),
        "size resolved from the claim"
    );
    // Without target manifests the new claim is unknown: no copy command with a placeholder,
    // but the command that lists the new claims and the way to get the copy steps.
    assert!(
        cmds.iter()
            .all(|c| !c.contains('<') && !c.contains(" copy ")),
        "{cmds:#?}"
    );
    let find = pos("kubectl get pvc -n kubeflow -l");
    assert!(pos("juju deploy minio") < find);
    assert!(
        r.steps[find].description.contains("-f FILE"),
        "{:?}",
        r.steps[find]
    );
}

#[test]
fn kubeflow_copy_goes_to_the_claim_named_by_the_target_manifests() {
    let snapshot = offline_snapshot(&[fixture("kubeflow-minio.yaml")], None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("minio-1.7.yaml");
    std::fs::write(
        &target,
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: minio}\nspec:\n  replicas: 1\n  template: {metadata: {labels: {app.kubernetes.io/name: minio}}}\n  volumeClaimTemplates:\n  - metadata: {name: minio-data-7f3a}\n",
    )
    .unwrap();
    let profile = profile::builtin("kubeflow").unwrap();
    let targets = upgrade_shared::yaml::read_objects(&target)
        .unwrap()
        .into_iter()
        .map(|o| ("minio-1.7.yaml".to_string(), o))
        .collect();
    let r = plan::check(
        &profile,
        &snapshot,
        &Options {
            from: None,
            to: Some(v("1.7")),
            targets,
        },
    )
    .unwrap();
    assert!(commands(&r).contains(&"kubectl upgrade-migrate-pv copy minio-data-minio-0 minio-data-7f3a-minio-0 -n kubeflow --verify=checksum --yes"));
}

#[test]
fn rok_quiesces_then_upgrades_components_in_order() {
    let snapshot = offline_snapshot(&[fixture("rok.yaml")], Some("rok")).unwrap();
    let r = check("rok", &snapshot, None, "v2");
    assert_eq!((r.verdict, r.from.as_str()), (Outcome::NeedsSteps, "v1"));
    let cmds = commands(&r);
    let order = [
        "upgrade-verify record -n rok --profile rok",
        "--cascade=orphan",
        "upgrade-restart quiesce",
        "rok-disk-manager",
        "rok-kmod",
        "rok-cluster",
        "rok-operator/overlays",
        "upgrade-restart resume -n rok",
        "upgrade-verify wait -n rok --profile rok --to v2",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|n| {
            cmds.iter()
                .position(|c| c.contains(n))
                .unwrap_or_else(|| panic!("no {n}: {cmds:#?}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{cmds:#?}");
    assert!(
        cmds[positions[2]].contains("-n rok rok-system/sts/rok-operator sts/rok-csi-controller")
    );
}

#[test]
fn immutable_statefulset_fields_in_target_manifests_need_delete_and_reapply() {
    let snapshot = offline_snapshot(&[fixture("rok.yaml")], Some("rok")).unwrap();
    let r = try_check("rok", &snapshot, None, "v2", &["rok-tools-v2.yaml"]).unwrap();
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "statefulset-immutable-fields")
        .expect("finding");
    assert_eq!(
        f.evidence,
        [
            "sts/rok-tools spec.serviceName",
            "sts/rok-tools spec.volumeClaimTemplates"
        ]
    );
    assert_eq!(f.component, "rok-tools");
    assert!(
        commands(&r)
            .iter()
            .any(|c| c.starts_with("kubectl apply -f ") && c.ends_with("rok-tools-v2.yaml -n rok"))
    );
    // The same claim size written another way, and defaults left out, change nothing.
    let r = try_check("rok", &snapshot, None, "v2", &["rok-tools-same.yaml"]).unwrap();
    assert!(
        !codes(&r).contains(&"statefulset-immutable-fields"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn versions_the_profile_does_not_know_are_errors() {
    let snapshot = cluster_file("v1.8.0", Mode::StorageClass);
    let err = try_check("fate", &snapshot, None, "v1.8.7", &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "unknown fate version v1.8.7 (known: v1.6.0, v1.6.1, v1.7.0, v1.7.1, v1.7.2, v1.8.0, v1.9.0, v1.9.1, v1.10.0, and newer)"
    );
    let err = try_check("kubeflow", &snapshot, Some("1.6"), "1.9", &[])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("unknown kubeflow version 1.9"), "{err}");
}

#[test]
fn an_undetectable_running_version_asks_for_from() {
    // MySQL alone: its image tag is MySQL's version, not FATE's.
    let mut snapshot = offline_snapshot(&[fixture("fate-1.8.0-storage-class.yaml")], None).unwrap();
    snapshot
        .deployments
        .retain(|d| d.metadata.name.as_deref() == Some("mysql"));
    let err = try_check("fate", &snapshot, None, "v1.9.0", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot tell the running fate version in namespace fate-9999"),
        "{err}"
    );
    assert!(err.ends_with("pass --from VERSION"), "{err}");
}

#[test]
fn json_report_has_the_contract_fields() {
    let report = check(
        "fate",
        &cluster_file("v1.8.0", Mode::StorageClass),
        None,
        "v1.9.0",
    );
    let json = serde_json::to_value(&report).unwrap();
    for key in ["verdict", "profile", "from", "to", "findings", "steps"] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    assert_eq!(json["verdict"], "needs-steps");
    for key in ["severity", "component", "code", "message", "remediation"] {
        assert!(
            json["findings"][0].get(key).is_some(),
            "finding misses {key}"
        );
    }
    for key in ["description", "command"] {
        assert!(json["steps"][0].get(key).is_some(), "step misses {key}");
    }
}

/// Issue 8, item 1: one user-made claim does not make the whole installation
/// `existing-claim`; every data component is judged on its own claims.
#[test]
fn issue8_1_persistence_is_decided_per_component() {
    let mut snapshot = offline_snapshot(&[fixture("fate-1.8.0-storage-class.yaml")], None).unwrap();
    let mysql_data = snapshot
        .claims
        .iter_mut()
        .find(|c| c.metadata.name.as_deref() == Some("mysql-data"))
        .unwrap();
    mysql_data.metadata.labels = Some([("fateMoudle".to_string(), "mysql".to_string())].into());
    mysql_data.metadata.annotations = None;
    let report = check("fate", &snapshot, None, "v1.9.0");
    assert_eq!(
        report.verdict,
        Outcome::NeedsSteps,
        "python's chart-made claim is still left behind: {:#?}",
        report.findings
    );
    assert_eq!(
        report.persistence,
        Mode::StorageClass,
        "the worst mode decides"
    );
    assert_eq!(
        report.persistence_by_component,
        [
            ("mysql".to_string(), Mode::ExistingClaim),
            ("python".to_string(), Mode::StorageClass)
        ]
        .into()
    );
    let mixed = report
        .findings
        .iter()
        .find(|f| f.code == "mixed-persistence")
        .expect("mixed modes are reported");
    assert!(
        mixed
            .message
            .contains("existing-claim (mysql); storage-class (python)"),
        "{}",
        mixed.message
    );
    let paths: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.code == "upgrade-path")
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(paths.len(), 2, "one matrix cell per mode: {paths:#?}");
    assert!(
        paths[0].contains("existing-claim (mysql): safe"),
        "{}",
        paths[0]
    );
    assert!(
        paths[1].contains("storage-class (python): needs-steps"),
        "{}",
        paths[1]
    );
    let cmds = commands(&report);
    assert!(
        cmds.iter()
            .any(|c| c.contains("adopt python-data python-data-python-0")),
        "{cmds:#?}"
    );
    assert!(
        !cmds.iter().any(|c| c.contains("adopt mysql-data")),
        "the user's own claim is handed to the new version as it is: {cmds:#?}"
    );
}

/// Issue 8, item 4: a namespace without any of the application's components is an error
/// naming what was looked for, even with `--from` given — never a runbook for claims that do
/// not exist.
#[test]
fn issue8_4_nothing_found_is_an_error() {
    let empty = Snapshot {
        namespace: "nosuchns".into(),
        ..Snapshot::default()
    };
    let err = try_check("fate", &empty, Some("v1.8.0"), "v1.9.0", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("no FATE components in namespace nosuchns (looked for fateMoudle=mysql, fateMoudle=python, "),
        "{err}"
    );
    let err = try_check("rok", &empty, Some("v1"), "v2", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rok-system/app=rok-operator") && err.contains("RokCluster"),
        "components in other namespaces and custom resources are named: {err}"
    );
    // Objects of another application are not the application either.
    let other = offline_snapshot(&[fixture("kubeflow-minio.yaml")], None).unwrap();
    assert!(try_check("fate", &other, Some("v1.8.0"), "v1.9.0", &[]).is_err());
    // A cluster file alone is enough: it describes the installation.
    assert!(
        try_check(
            "fate",
            &cluster_file("v1.8.0", Mode::StorageClass),
            None,
            "v1.9.0",
            &[]
        )
        .is_ok()
    );
}

fn schema_note(report: &Report) -> String {
    report
        .steps
        .iter()
        .map(|s| s.description.as_str())
        .chain(
            report
                .findings
                .iter()
                .filter(|f| f.code == "schema-scripts")
                .map(|f| f.message.as_str()),
        )
        .collect::<Vec<_>>()
        .join("\n")
}

/// Issue 8, item 3: every move that crosses a version with a schema script lists the chain,
/// also when the target itself has no script of its own (v1.9.1, v1.10.0), in every mode.
#[test]
fn issue8_3_schema_scripts_for_every_target() {
    for to in ["v1.9.1", "v1.10.0"] {
        let report = check(
            "fate",
            &cluster_file("v1.8.0", Mode::StorageClass),
            None,
            to,
        );
        let note = schema_note(&report);
        assert!(
            note.contains("sql/fate/1.8.0-1.9.0.sql"),
            "v1.8.0 → {to}: {note}"
        );
        assert!(!note.contains("1.7.2-1.8.0"), "{note}");
    }
    let report = check(
        "fate",
        &cluster_file("v1.7.2", Mode::ExistingClaim),
        None,
        "v1.10.0",
    );
    assert_eq!(report.verdict, Outcome::Safe);
    let note = schema_note(&report);
    assert!(
        note.contains("sql/fate/1.7.2-1.8.0.sql, sql/fate/1.8.0-1.9.0.sql"),
        "{note}"
    );
    assert!(
        note.contains("KubeFATE's upgrade Job"),
        "who runs them is said: {note}"
    );
    assert!(
        !commands(&report)
            .iter()
            .any(|c| c.contains("upgrade-migrate-db")),
        "{:#?}",
        report.steps
    );
    let report = try_check_profile(
        &fate_without_applied_by(),
        &cluster_file("v1.7.2", Mode::ExistingClaim),
        None,
        "v1.10.0",
        &[],
    )
    .unwrap();
    let note = schema_note(&report);
    assert!(
        note.contains("kubectl upgrade-migrate-db apply"),
        "who runs them is said: {note}"
    );
    assert!(
        commands(&report).contains(&"kubectl upgrade-migrate-db apply -n fate-9999 --profile fate --from v1.7.2 --to v1.10.0 --backup fate-9999-v1.7.2-before-schema.sql.manifest.json"),
        "{:#?}",
        report.steps
    );
    let report = check(
        "fate",
        &cluster_file("v1.9.0", Mode::StorageClass),
        None,
        "v1.10.0",
    );
    assert!(
        !schema_note(&report).contains("sql/fate/"),
        "nothing to run past the last script"
    );
}

/// Issue 8, item 5: the version already running is safe with no steps.
#[test]
fn issue8_5_already_at_the_target_is_safe_with_no_steps() {
    let fate = check(
        "fate",
        &cluster_file("v1.9.0", Mode::StorageClass),
        None,
        "v1.9.0",
    );
    assert_eq!(fate.verdict, Outcome::Safe);
    assert!(fate.steps.is_empty(), "{:#?}", fate.steps);
    assert!(
        fate.findings
            .iter()
            .any(|f| f.code == "already-at-target" && f.message.contains("already at v1.9.0")),
        "{:#?}",
        fate.findings
    );
    let fdb = check("foundationdb", &fdb(true), None, "7.1.33");
    assert_eq!(fdb.verdict, Outcome::Safe, "{:#?}", fdb.findings);
    assert!(fdb.steps.is_empty(), "no bounce: {:#?}", fdb.steps);
}

/// Issue 8, item 5: an operator that has not caught up with the resource's spec means an
/// upgrade is in progress.
#[test]
fn issue8_5_an_upgrade_in_progress_is_a_finding() {
    let mut snapshot = fdb(false);
    snapshot.custom[0]["spec"]["version"] = "7.3.1".into();
    let r = check("foundationdb", &snapshot, None, "7.3.1");
    assert_eq!(r.from, "7.1.33", "the running version, not the wanted one");
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "upgrade-in-progress")
        .expect("in progress");
    assert!(
        f.message.contains("spec.version 7.3.1")
            && f.message.contains("status.runningVersion 7.1.33"),
        "{}",
        f.message
    );
    assert_ne!(r.verdict, Outcome::Safe);
    let mut snapshot = fdb(false);
    snapshot.custom[0]["metadata"]["generation"] = 4.into();
    snapshot.custom[0]["status"]["generations"] = serde_json::json!({"reconciled": 3});
    let r = check("foundationdb", &snapshot, None, "7.1.33");
    assert!(
        r.findings
            .iter()
            .any(|f| f.code == "upgrade-in-progress" && f.message.contains("generation 4")),
        "{:#?}",
        r.findings
    );
    assert_ne!(r.verdict, Outcome::Safe);
}

/// Issue 8, item 5: after Kubeflow's new MinIO is deployed, the old claim still holding the
/// only copy of the data is critical, until the journal holds a verified copy of it.
#[test]
fn issue8_5_an_old_claim_never_copied_is_critical_after_the_redeploy() {
    let mut snapshot = offline_snapshot(&[fixture("kubeflow-minio.yaml")], None).unwrap();
    let sts = &mut snapshot.statefulsets[0];
    sts.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("app.kubernetes.io/version".into(), "1.7".into());
    sts.spec
        .as_mut()
        .unwrap()
        .volume_claim_templates
        .as_mut()
        .unwrap()[0]
        .metadata
        .name = Some("minio-data-7f3a".into());
    let r = check("kubeflow", &snapshot, None, "1.7");
    assert_eq!(r.from, "1.7");
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "data-not-copied")
        .unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!(f.severity, plan::Severity::Critical);
    assert_eq!(f.evidence, ["pvc/minio-data-minio-0"]);
    assert_ne!(r.verdict, Outcome::Safe);
    assert!(
        commands(&r).iter().any(|c| c.starts_with(
            "kubectl upgrade-migrate-pv copy minio-data-minio-0 minio-data-7f3a-minio-0 -n kubeflow"
        )),
        "{:#?}",
        r.steps
    );
    // A verified copy in migrate-pv's journal settles it, but only while the cluster still
    // holds what it proves: the copied claim itself, and the destination Bound to its volume.
    let old = snapshot
        .claims
        .iter_mut()
        .find(|c| c.metadata.name.as_deref() == Some("minio-data-minio-0"))
        .unwrap();
    old.metadata.uid = Some("uid-old-claim".into());
    let proof = serde_json::json!({
        "source_claim_uid": "uid-old-claim", "source_volume": "pv-old", "source_volume_uid": "uid-pv-old",
        "dest_claim_uid": "uid-new-claim", "dest_volume": "pv-new", "dest_volume_uid": "uid-pv-new",
        "manifest_sha256": "0".repeat(64), "verified_at": "2026-01-01T00:00:00Z",
    });
    let entry = |proof: Option<&serde_json::Value>| {
        let mut e = serde_json::json!({"kind": "copy", "source": "minio-data-minio-0",
            "dest": "minio-data-7f3a-minio-0", "state": "verified", "quiesced": {}});
        if let Some(p) = proof {
            e["proof"] = p.clone();
        }
        serde_json::json!({"copy.minio-data-7f3a-minio-0": e.to_string()})
    };
    let not_copied = |snapshot: &Snapshot| {
        check("kubeflow", snapshot, None, "1.7")
            .findings
            .into_iter()
            .find(|f| f.code == "data-not-copied")
            .map(|f| f.message)
    };
    // Recorded without the objects it went between (an entry from an older migrate-pv).
    snapshot.add_journal(Some(&entry(None)));
    let msg = not_copied(&snapshot).expect("a copy with no proof does not count");
    assert!(msg.contains("without the objects it went between"), "{msg}");
    // The destination claim was deleted after the copy.
    snapshot.add_journal(Some(&entry(Some(&proof))));
    let msg = not_copied(&snapshot).expect("a copy whose claim is gone does not count");
    assert!(msg.contains("no longer exists"), "{msg}");
    // The destination stands: Bound to the recorded volume, both with their recorded UIDs.
    snapshot.claims.push(
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "minio-data-7f3a-minio-0", "namespace": "kubeflow", "uid": "uid-new-claim"},
            "spec": {"volumeName": "pv-new"}, "status": {"phase": "Bound"},
        }))
        .unwrap(),
    );
    snapshot.volumes.push(
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "pv-new", "uid": "uid-pv-new"},
            "spec": {"claimRef": {"name": "minio-data-7f3a-minio-0", "namespace": "kubeflow", "uid": "uid-new-claim"}},
            "status": {"phase": "Bound"},
        }))
        .unwrap(),
    );
    assert_eq!(not_copied(&snapshot), None);
    // The old claim was deleted and made again since: the copy is of another claim.
    let old = snapshot
        .claims
        .iter_mut()
        .find(|c| c.metadata.name.as_deref() == Some("minio-data-minio-0"))
        .unwrap();
    old.metadata.uid = Some("uid-old-claim-again".into());
    let msg = not_copied(&snapshot).expect("a copy of an earlier claim does not count");
    assert!(msg.contains("uid-old-claim"), "{msg}");
}

/// Issue 8, item 2: with target manifests, each adoption is checked against the StatefulSet
/// in them (`--for-statefulset NAME -f FILE`), and a node manager takes its own ordinal's claim.
#[test]
fn issue8_2_adoptions_name_the_target_manifests() {
    let target =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios/fate-1.9.0.yaml");
    let snapshot = cluster_file("v1.8.0", Mode::StorageClass);
    let profile = profile::builtin("fate").unwrap();
    let targets = upgrade_shared::yaml::read_objects(&target)
        .unwrap()
        .into_iter()
        .map(|o| ("fate-1.9.0.yaml".to_string(), o))
        .collect();
    let r = plan::check(
        &profile,
        &snapshot,
        &Options {
            from: None,
            to: Some(v("v1.9.0")),
            targets,
        },
    )
    .unwrap();
    let cmds = commands(&r);
    let adopt: Vec<&str> = cmds
        .iter()
        .copied()
        .filter(|c| c.contains(" adopt "))
        .collect();
    assert_eq!(
        adopt,
        [
            "kubectl upgrade-migrate-pv adopt mysql-data=data-mysql-0 python-data=python-data-python-0 client-data=client-data-client-0 nodemanager-0-data=data-dir-nodemanager-0 nodemanager-1-data=data-dir-nodemanager-1 -n fate-9999 --for-statefulset mysql --for-statefulset python --for-statefulset client --for-statefulset nodemanager -f fate-1.9.0.yaml"
        ],
        "every new claim checked against its StatefulSet in the target manifests"
    );
}

/// Issue 8, item 9: after `upgrade-migrate-pv retain`, the recorded original policy keeps the
/// restore-policy step in the runbook.
#[test]
fn issue8_9_recorded_original_policies_keep_the_restore_step() {
    let mut snapshot = offline_snapshot(&[fixture("fate-1.8.0-storage-class.yaml")], None).unwrap();
    let pv = snapshot
        .volumes
        .iter_mut()
        .find(|v| v.metadata.name.as_deref() == Some("pvc-0865a743-9bfb-4990-bd26-84b0241f0084"))
        .unwrap();
    pv.spec.as_mut().unwrap().persistent_volume_reclaim_policy = Some("Retain".into());
    pv.metadata.annotations = Some(
        [(
            "upgrade.kubectl-upgrade.dev/original-reclaim-policy".to_string(),
            "Delete".to_string(),
        )]
        .into(),
    );
    let report = check("fate", &snapshot, None, "v1.9.0");
    let cmds = commands(&report);
    assert!(!cmds.iter().any(|c| c.contains(" retain ")), "{cmds:#?}");
    assert!(
        cmds.contains(&"kubectl upgrade-migrate-pv restore-policy -n fate-9999 --all"),
        "{cmds:#?}"
    );
}

/// Issue 8, item 8: a target given as a major means that major's first release, so `--to v1`
/// while v1.5.3 runs goes back, and Rok's etcd migrations only go forward.
#[test]
fn issue8_8_a_major_target_below_the_running_release_is_a_downgrade() {
    let snapshot = offline_snapshot(&[fixture("rok.yaml")], Some("rok")).unwrap();
    let r = check("rok", &snapshot, Some("v1.5.3"), "v1");
    assert_eq!(r.verdict, Outcome::Blocked, "{:#?}", r.findings);
    assert!(
        !codes(&r).contains(&"already-at-target"),
        "{:#?}",
        r.findings
    );
    let path = r
        .findings
        .iter()
        .find(|f| f.code == "upgrade-path")
        .expect("upgrade-path finding");
    assert!(
        path.message.contains("v1 is read as v1.0.0") && path.message.contains("forward only"),
        "{}",
        path.message
    );
    // The running release itself, or the major above it, are not downgrades.
    let r = check("rok", &snapshot, Some("v1.5.3"), "v1.5.3");
    assert!(
        codes(&r).contains(&"already-at-target"),
        "{:#?}",
        r.findings
    );
    let r = check("rok", &snapshot, Some("v1.5.3"), "v2");
    assert_eq!(r.verdict, Outcome::NeedsSteps, "{:#?}", r.findings);
}

/// Issue 8, item 8: the immutable-field remedy is one delete --cascade=orphan and one apply per
/// StatefulSet, and the apply names the manifest file the user gave with -f.
#[test]
fn issue8_8_the_immutable_field_remedy_appears_once_per_statefulset() {
    let snapshot = offline_snapshot(&[fixture("rok.yaml")], Some("rok")).unwrap();
    let r = try_check(
        "rok",
        &snapshot,
        Some("v1.5.3"),
        "v2",
        &["rok-tools-same.yaml", "rok-tools-v2.yaml"],
    )
    .unwrap();
    let cmds = commands(&r);
    let deletes: Vec<&&str> = cmds
        .iter()
        .filter(|c| c.contains("--cascade=orphan"))
        .collect();
    assert_eq!(
        deletes,
        [&"kubectl delete sts rok-tools -n rok --cascade=orphan"],
        "{cmds:#?}"
    );
    let applies: Vec<&&str> = cmds
        .iter()
        .filter(|c| c.starts_with("kubectl apply -f "))
        .collect();
    assert_eq!(applies.len(), 1, "{cmds:#?}");
    assert!(
        applies[0].ends_with("/rok-tools-v2.yaml -n rok"),
        "the file whose StatefulSet changes the immutable fields: {cmds:#?}"
    );
    let delete = cmds.iter().position(|c| c.contains("--cascade=orphan"));
    let apply = cmds.iter().position(|c| c.starts_with("kubectl apply -f "));
    assert!(delete < apply, "{cmds:#?}");
}

/// Issue 8, item 7: the new MinIO is stopped (and its pods gone) before its claim is filled and
/// started after; the guide's manual steps are steps: the credentials kept before the old
/// MinIO goes and set again on the new one, its relations removed before and made again after
/// the copy. Juju re-creates the StatefulSet, so no delete --cascade=orphan pair for it.
#[test]
fn issue8_7_kubeflow_stops_the_new_minio_for_the_copy_and_starts_it_after() {
    let snapshot = offline_snapshot(&[fixture("kubeflow-minio.yaml")], None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("minio-1.7.yaml");
    // Juju's 1.7 StatefulSet: another service name and a claim template with a suffix.
    std::fs::write(
        &target,
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: minio, namespace: kubeflow}\nspec:\n  serviceName: minio-endpoints\n  replicas: 1\n  selector: {matchLabels: {app.kubernetes.io/name: minio}}\n  template: {metadata: {labels: {app.kubernetes.io/name: minio}}}\n  volumeClaimTemplates:\n  - metadata: {name: minio-data-7f3a}\n    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 20Gi}}}\n",
    )
    .unwrap();
    let profile = profile::builtin("kubeflow").unwrap();
    let targets = upgrade_shared::yaml::read_objects(&target)
        .unwrap()
        .into_iter()
        .map(|o| ("minio-1.7.yaml".to_string(), o))
        .collect();
    let r = plan::check(
        &profile,
        &snapshot,
        &Options {
            from: None,
            to: Some(v("1.7")),
            targets,
        },
    )
    .unwrap();
    let cmds = commands(&r);
    let pos = |needle: &str| {
        cmds.iter()
            .position(|c| c.contains(needle))
            .unwrap_or_else(|| panic!("no {needle}: {cmds:#?}"))
    };
    let order = [
        "juju config minio access-key -o minio-access-key",
        "juju config minio secret-key -o minio-secret-key",
        "juju remove-relation minio:object-storage kfp-api:object-storage",
        "juju remove-application minio",
        "juju deploy minio --channel 1.7/stable",
        "juju config minio access-key=@minio-access-key secret-key=@minio-secret-key",
        "rm minio-access-key minio-secret-key",
        "kubectl upgrade-restart quiesce -n kubeflow sts/minio",
        "kubectl upgrade-migrate-pv copy minio-data-minio-0 minio-data-7f3a-minio-0 -n kubeflow",
        "kubectl upgrade-restart resume -n kubeflow",
        "juju relate minio kfp-api",
        "juju refresh kfp-api",
        "kubectl upgrade-migrate-pv cleanup minio-data-minio-0",
    ];
    let at: Vec<usize> = order.iter().map(|n| pos(n)).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{cmds:#?}");
    for charm in [
        "argo-controller",
        "kfp-api",
        "kfp-profile-controller",
        "kfp-ui",
    ] {
        let removed = pos(&format!(
            "juju remove-relation minio:object-storage {charm}:"
        ));
        let related = pos(&format!("juju relate minio {charm}"));
        assert!(removed < at[3] && related > at[8], "{charm}: {cmds:#?}");
    }
    assert!(
        cmds.iter().all(|c| !c.contains("--cascade=orphan")
            && !c.starts_with("kubectl apply -f ")
            && !c.starts_with("kubectl scale ")),
        "{cmds:#?}"
    );
    // The credentials never appear in a command: only the files juju writes and reads.
    assert!(cmds.iter().all(|c| !c.contains("minio123")), "{cmds:#?}");
}

/// A `status json` document with these clients: (address, library versions loaded).
fn fdb_status(clients: &[(&str, &[&str])]) -> serde_json::Value {
    let mut versions: Vec<&str> = clients
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    versions.sort();
    versions.dedup();
    let entries: Vec<serde_json::Value> = versions
        .iter()
        .map(|v| {
            let connected: Vec<serde_json::Value> = clients
                .iter()
                .filter(|(_, vs)| vs.contains(v))
                .map(|(a, _)| serde_json::json!({"address": a, "log_group": "default"}))
                .collect();
            serde_json::json!({"client_version": v, "connected_clients": connected, "count": connected.len(), "max_protocol_clients": [], "protocol_version": "fdb00b071010000"})
        })
        .collect();
    serde_json::json!({"cluster": {"clients": {"count": clients.len(), "supported_versions": entries}}})
}

fn fdb_with_status(status: Option<Result<serde_json::Value, String>>) -> Snapshot {
    let mut snapshot = offline_snapshot(&[fixture("fdb-cluster.yaml")], None).unwrap();
    snapshot.database_status = status;
    snapshot
}

/// Issue 8, item 6: before a minor upgrade every connected client must support the target,
/// read from the database's status; clients that do not block it, named with their versions.
#[test]
fn issue8_6_clients_without_the_target_library_block_a_minor_upgrade() {
    let compatible = fdb_status(&[
        ("10.1.0.50:4500", &["7.1.33", "7.3.43"]),
        ("10.1.0.52:4500", &["7.3.43"]),
    ]);
    let r = check(
        "foundationdb",
        &fdb_with_status(Some(Ok(compatible))),
        None,
        "7.3.43",
    );
    assert!(
        !codes(&r).iter().any(|c| c.starts_with("client")),
        "{:#?}",
        r.findings
    );
    assert_eq!(r.verdict, Outcome::NeedsSteps);
    let old = fdb_status(&[
        ("10.1.0.50:4500", &["7.1.33", "7.3.43"]),
        ("10.1.0.51:4500", &["7.1.33"]),
    ]);
    let r = check(
        "foundationdb",
        &fdb_with_status(Some(Ok(old.clone()))),
        None,
        "7.3",
    );
    assert_eq!(r.verdict, Outcome::Blocked, "{:#?}", r.findings);
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "clients-not-compatible")
        .expect("finding");
    assert!(
        f.message
            .contains("1 of 2 connected clients does not support 7.3")
            && f.message.contains("10.1.0.51:4500 (7.1.33)")
            && !f.message.contains("10.1.0.50"),
        "{}",
        f.message
    );
    // A patch upgrade keeps the protocol: not checked, as the operator does not check it.
    let r = check(
        "foundationdb",
        &fdb_with_status(Some(Ok(old))),
        None,
        "7.1.40",
    );
    assert!(
        !codes(&r).iter().any(|c| c.starts_with("client")),
        "{:#?}",
        r.findings
    );
}

/// Issue 8, item 6: client versions that cannot be read are a finding, never a silent pass.
#[test]
fn issue8_6_unreadable_client_versions_are_a_finding() {
    for (status, says) in [
        (
            Some(Err("no Running pod of storage, log, stateless with container foundationdb to run fdbcli --exec status json in".to_string())),
            "could not read client versions: no Running pod",
        ),
        (None, "could not read client versions: the check read files"),
        (
            Some(Ok(serde_json::json!({"client": {"database_status": {"available": false}}}))),
            "has no cluster.clients.supported_versions",
        ),
    ] {
        let r = check("foundationdb", &fdb_with_status(status), None, "7.3.43");
        let f = r
            .findings
            .iter()
            .find(|f| f.code == "client-versions-unknown")
            .unwrap_or_else(|| panic!("{:#?}", r.findings));
        assert!(f.message.contains(says), "{}", f.message);
        assert_ne!(r.verdict, Outcome::Safe);
    }
}
