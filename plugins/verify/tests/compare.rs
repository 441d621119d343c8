//! The record and the comparison from fixtures, without a cluster. The FATE fixtures are
//! `kubectl get deploy,pods,pvc,pv,jobs -o yaml` of the simulated cluster's v1.7.2 scenario
//! before and after its images were set to 1.8.0 (same cluster, so UIDs carry over).

use std::path::Path;

use serde_json::{Value, json};
use upgrade_shared::profile::{self, Profile};
use upgrade_shared::version::Version;

use kubectl_upgrade_verify::baseline::{Baseline, TableRecord};
use kubectl_upgrade_verify::compare::{Observed, Options, compare};
use kubectl_upgrade_verify::record;
use kubectl_upgrade_verify::report::{Report, Verdict};
use kubectl_upgrade_verify::state::State;

fn objects(path: &Path) -> Vec<Value> {
    upgrade_shared::yaml::read_objects(path).expect("fixture parses")
}

fn fixture(name: &str) -> Vec<Value> {
    objects(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
}

fn state(namespace: &str, objects: Vec<Value>) -> State {
    let mut s = State {
        namespace: namespace.into(),
        ..State::default()
    };
    for o in objects {
        s.add(o).expect("object loads");
    }
    s
}

fn fate() -> Profile {
    profile::builtin("fate").expect("fate profile")
}

fn before() -> State {
    state("fate-9999", fixture("fate-1.7.2-before.yaml"))
}

fn after_objects() -> Vec<Value> {
    fixture("fate-1.8.0-after.yaml")
}

fn baseline(profile: Option<&Profile>) -> Baseline {
    record::baseline(&before(), profile, "2026-01-01T00:00:00Z".into())
}

fn to(v: &str) -> Options {
    Options {
        to: Some(Version::parse(v).expect("version")),
    }
}

fn run(b: &Baseline, objects: Vec<Value>, profile: Option<&Profile>, options: &Options) -> Report {
    compare(
        b,
        &state("fate-9999", objects),
        profile,
        &Observed::default(),
        options,
    )
}

fn codes(r: &Report) -> Vec<(String, String)> {
    r.differences
        .iter()
        .map(|d| (d.code.clone(), d.object.clone()))
        .collect()
}

fn named<'a>(objects: &'a mut [Value], kind: &str, prefix: &str) -> &'a mut Value {
    objects
        .iter_mut()
        .find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("{kind} {prefix}* in the fixture"))
}

#[test]
fn the_record_holds_every_component_claim_and_pod() {
    let b = baseline(Some(&fate()));
    assert_eq!(b.version.as_deref(), Some("1.7.2-release"));
    assert_eq!(b.components.len(), 7);
    let python = b
        .components
        .iter()
        .find(|c| c.name == "python")
        .expect("python");
    assert!(python.follows_app);
    assert_eq!(python.workloads, ["deploy/python"]);
    let mysql = b
        .components
        .iter()
        .find(|c| c.name == "mysql")
        .expect("mysql");
    assert_eq!(mysql.version.as_deref(), Some("8.0.28"));
    assert!(
        !mysql.follows_app,
        "mysql's image does not carry FATE's version"
    );
    let data = b.volume("fate-9999", "mysql-data").expect("mysql-data");
    assert_eq!(data.volume, "fate-9999-mysql-data");
    assert!(!data.volume_uid.is_empty());
    assert_eq!(data.reclaim_policy.as_deref(), Some("Retain"));
    assert_eq!(data.capacity.as_deref(), Some("1Gi"));
    assert_eq!(data.component.as_deref(), Some("mysql"));
    assert!(data.data);
    assert_eq!(b.pods.len(), 7);
}

#[test]
fn after_the_upgrade_to_1_8_0_everything_verifies() {
    let p = fate();
    let r = run(
        &baseline(Some(&p)),
        after_objects(),
        Some(&p),
        &to("v1.8.0"),
    );
    assert_eq!(r.differences, vec![], "{r:#?}");
    assert_eq!(r.verdict, Verdict::Verified);
    assert_eq!(r.checked.volumes, 5);
    let python = r
        .components
        .iter()
        .find(|c| c.name == "python")
        .expect("row");
    assert_eq!(
        (python.old.as_str(), python.new.as_str()),
        ("1.7.2-release", "1.8.0-release")
    );
}

#[test]
fn before_the_upgrade_every_versioned_component_is_named() {
    let p = fate();
    let r = run(
        &baseline(Some(&p)),
        fixture("fate-1.7.2-before.yaml"),
        Some(&p),
        &to("v1.8.0"),
    );
    assert_eq!(r.verdict, Verdict::Differences);
    let found = codes(&r);
    assert_eq!(found[0], ("version".into(), "fate fate-9999".into()));
    let components: Vec<&str> = found
        .iter()
        .filter(|(c, _)| c == "component-version")
        .map(|(_, o)| o.as_str())
        .collect();
    assert_eq!(
        components,
        [
            "deploy/python",
            "deploy/client",
            "deploy/nodemanager-0",
            "deploy/nodemanager-1",
            "deploy/clustermanager",
            "deploy/rollsite"
        ]
    );
    let d = &r.differences[1];
    assert_eq!(
        (d.recorded.as_str(), d.now.as_str()),
        ("v1.8.0", "1.7.2-release")
    );
}

#[test]
fn a_lost_volume_is_named_with_its_uid() {
    let p = fate();
    let b = baseline(Some(&p));
    let uid = b
        .volume("fate-9999", "mysql-data")
        .expect("rec")
        .volume_uid
        .clone();
    let mut objs = after_objects();
    objs.retain(|o| {
        !(o["kind"] == "PersistentVolume" && o["metadata"]["name"] == "fate-9999-mysql-data")
    });
    let r = run(&b, objs, Some(&p), &to("v1.8.0"));
    assert_eq!(
        codes(&r),
        [("volume-lost".into(), "pv/fate-9999-mysql-data".into())]
    );
    assert_eq!(
        r.differences[0].recorded,
        format!("uid {uid} bound to pvc fate-9999/mysql-data")
    );
    assert_eq!(r.differences[0].now, "gone");
    assert_eq!(r.verdict.exit_code(), 1);
}

#[test]
fn a_claim_recreated_empty_is_caught_by_volume_uid() {
    // FATE's "pv loss": same claim name, a fresh volume; the old one Released.
    let p = fate();
    let b = baseline(Some(&p));
    let mut objs = after_objects();
    let claim = named(&mut objs, "PersistentVolumeClaim", "mysql-data");
    claim["metadata"]["uid"] = json!("new-claim-uid");
    claim["spec"]["volumeName"] = json!("pvc-new-claim-uid");
    let old = named(&mut objs, "PersistentVolume", "fate-9999-mysql-data");
    old["status"]["phase"] = json!("Released");
    let mut fresh = old.clone();
    fresh["metadata"]["name"] = json!("pvc-new-claim-uid");
    fresh["metadata"]["uid"] = json!("fresh-volume-uid");
    fresh["spec"]["claimRef"]["uid"] = json!("new-claim-uid");
    fresh["status"]["phase"] = json!("Bound");
    objs.push(fresh);
    let r = run(&b, objs, Some(&p), &to("v1.8.0"));
    assert_eq!(
        codes(&r),
        [
            ("claim-rebound".into(), "pvc/mysql-data".into()),
            ("volume-unbound".into(), "pv/fate-9999-mysql-data".into()),
        ]
    );
    assert_eq!(r.differences[0].recorded, "pv/fate-9999-mysql-data");
    assert_eq!(r.differences[0].now, "pv/pvc-new-claim-uid");
    assert_eq!(
        r.differences[1].now,
        "Released, claimRef fate-9999/mysql-data"
    );
}

#[test]
fn a_volume_bound_to_a_claim_nothing_uses_is_named() {
    let p = fate();
    let b = baseline(Some(&p));
    let mut objs = after_objects();
    // The client Deployment no longer mounts its claim.
    let client = named(&mut objs, "Deployment", "client");
    client["spec"]["template"]["spec"]["volumes"] = json!([]);
    objs.retain(|o| {
        !(o["kind"] == "Pod"
            && o["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("client-")))
    });
    let r = run(&b, objs, Some(&p), &to("v1.8.0"));
    assert_eq!(
        codes(&r),
        [("volume-unused".into(), "pv/fate-9999-client-data".into())]
    );
}

#[test]
fn a_crash_looping_pod_is_named() {
    let p = fate();
    let mut objs = after_objects();
    let pod = named(&mut objs, "Pod", "python-");
    let name = pod["metadata"]["name"].as_str().expect("name").to_string();
    pod["status"]["containerStatuses"][0]["state"] =
        json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}});
    pod["status"]["containerStatuses"][0]["restartCount"] = json!(4);
    let r = run(&baseline(Some(&p)), objs, Some(&p), &to("v1.8.0"));
    assert_eq!(codes(&r), [("crash-looping".into(), format!("pod/{name}"))]);
    assert_eq!(r.differences[0].now, "CrashLoopBackOff, 4 restarts");
}

#[test]
fn a_half_done_rollout_is_named_with_its_counts() {
    let p = fate();
    let mut objs = after_objects();
    let d = named(&mut objs, "Deployment", "python");
    d["spec"]["replicas"] = json!(2);
    d["status"]["replicas"] = json!(2);
    d["status"]["updatedReplicas"] = json!(1);
    let r = run(&baseline(Some(&p)), objs, Some(&p), &to("v1.8.0"));
    assert_eq!(
        codes(&r),
        [("rollout-incomplete".into(), "deploy/python".into())]
    );
    assert!(
        r.differences[0]
            .message
            .ends_with("1 of 2 replicas updated"),
        "{r:#?}"
    );
    assert_eq!(r.components[1].state, "rollout-incomplete");
}

#[test]
fn a_new_failed_job_is_named_and_old_jobs_are_not() {
    let p = fate();
    let job = |name: &str, uid: &str, condition: &str| {
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": name, "namespace": "fate-9999", "uid": uid},
               "spec": {"template": {"spec": {"containers": []}}},
               "status": {"failed": 1, "conditions": [{"type": condition, "status": "True", "reason": "BackoffLimitExceeded"}]}})
    };
    let mut old = fixture("fate-1.7.2-before.yaml");
    old.push(job("old-failure", "u-old", "Failed"));
    let b = record::baseline(&state("fate-9999", old), Some(&p), "t".into());
    let mut objs = after_objects();
    objs.push(job("old-failure", "u-old", "Failed"));
    objs.push(job("fate-upgrade", "u-new", "Failed"));
    let r = run(&b, objs, Some(&p), &to("v1.8.0"));
    assert_eq!(
        codes(&r),
        [("job-failed".into(), "job/fate-upgrade".into())]
    );
    assert_eq!(r.checked.jobs, 1);
}

#[test]
fn rows_below_the_baseline_and_dropped_tables_are_named_version_specific_ones_are_not() {
    let p = fate();
    let mut b = baseline(Some(&p));
    let t = |table: &str, rows: u64, vs: bool| TableRecord {
        component: "mysql".into(),
        database: "eggroll_meta".into(),
        table: table.into(),
        rows,
        version_specific: vs,
    };
    b.tables = vec![
        t("t_job", 10, false),
        t("t_task", 5, false),
        t("server_node", 3, true),
    ];
    let observed = Observed {
        tables: Some(vec![t("t_job", 9, false), t("server_node", 0, true)]),
        ..Observed::default()
    };
    let r = compare(
        &b,
        &state("fate-9999", after_objects()),
        Some(&p),
        &observed,
        &to("v1.8.0"),
    );
    assert_eq!(
        codes(&r),
        [
            ("rows-lost".into(), "table eggroll_meta.t_job".into()),
            ("table-missing".into(), "table eggroll_meta.t_task".into()),
        ]
    );
    assert_eq!(
        (
            r.differences[0].recorded.as_str(),
            r.differences[0].now.as_str()
        ),
        ("10 rows", "9 rows")
    );
    // Nothing read at all: not verified, exit 2.
    let r = compare(
        &b,
        &state("fate-9999", after_objects()),
        Some(&p),
        &Observed::default(),
        &to("v1.8.0"),
    );
    assert_eq!(r.verdict, Verdict::Unverified);
    assert_eq!(r.verdict.exit_code(), 2);
}

#[test]
fn a_plain_namespace_is_verified_without_a_profile() {
    let b = baseline(None);
    assert!(b.components.is_empty());
    assert_eq!(b.workloads.len(), 7);
    let r = run(&b, after_objects(), None, &Options::default());
    assert_eq!(r.verdict, Verdict::Verified, "{r:#?}");
    assert_eq!(r.components.len(), 7);
    let mut objs = after_objects();
    objs.retain(|o| !(o["kind"] == "Deployment" && o["metadata"]["name"] == "rollsite"));
    let r = run(&b, objs, None, &Options::default());
    assert_eq!(
        codes(&r),
        [("workload-missing".into(), "deploy/rollsite".into())]
    );
    // --to needs the recommended version label when there is no profile.
    let r = run(&b, after_objects(), None, &to("v1.8.0"));
    assert_eq!(r.verdict, Verdict::Unverified);
    assert!(
        r.unverified[0].contains("app.kubernetes.io/version"),
        "{:?}",
        r.unverified
    );
}

#[test]
fn fdb_reconciliation_and_health_come_from_the_custom_resource() {
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios/fdb-cluster.yaml");
    let p = profile::builtin("foundationdb").expect("fdb");
    let mut objs = objects(&scenario);
    for o in &mut objs {
        if o["kind"] == "FoundationDBCluster" {
            o["metadata"]["uid"] = json!("fdb-uid");
            o["metadata"]["generation"] = json!(1);
        }
    }
    let s = state("default", objs.clone());
    let b = record::baseline(&s, Some(&p), "t".into());
    assert_eq!(b.version.as_deref(), Some("7.1.33"));
    assert_eq!(b.custom_resources.len(), 1);
    assert_eq!(
        b.custom_resources[0].health["status.health.available"],
        json!(true)
    );
    // The version was set to 7.1.40 and the operator has not reconciled it.
    let cr = objs
        .iter_mut()
        .find(|o| o["kind"] == "FoundationDBCluster")
        .expect("cr");
    cr["spec"]["version"] = json!("7.1.40");
    cr["metadata"]["generation"] = json!(2);
    cr["status"]["health"]["available"] = json!(false);
    let r = compare(
        &b,
        &state("default", objs),
        Some(&p),
        &Observed::default(),
        &to("7.1.40"),
    );
    let unhealthy: Vec<&str> = r
        .differences
        .iter()
        .filter(|d| d.code == "custom-resource-unhealthy")
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        unhealthy,
        [
            "FoundationDBCluster/sample status.health.available is false, expected true",
            "FoundationDBCluster/sample status.runningVersion is 7.1.33, expected 7.1.40",
            "FoundationDBCluster/sample status.generations.reconciled is 1, expected 2",
            "FoundationDBCluster/sample status.runningVersion is 7.1.33, expected 7.1.40",
        ]
    );
}

#[test]
fn the_report_table_names_both_values() {
    let p = fate();
    let mut objs = after_objects();
    objs.retain(|o| {
        !(o["kind"] == "PersistentVolume" && o["metadata"]["name"] == "fate-9999-python-data")
    });
    let r = run(&baseline(Some(&p)), objs, Some(&p), &to("v1.8.0"));
    let text = kubectl_upgrade_verify::render::report(&r, &upgrade_shared::output::Styles::plain());
    insta::assert_snapshot!(text);
}

/// KubeFATE's v1.7.1 → v1.7.2 workaround (the profile's reinstall edge) deletes the cluster
/// and its claims and installs fresh: only the database's rows are carried, through a dump.
/// The replaced volumes are said as notes naming the edge, the rows are still compared; the
/// same loss on an in-place upgrade stays a difference.
#[test]
fn volumes_a_reinstall_replaces_are_notes_and_rows_are_still_compared() {
    let p = fate();
    let mut b = baseline(Some(&p));
    let mut objs = after_objects();
    objs.retain(|o| {
        !(o["kind"] == "PersistentVolume" && o["metadata"]["name"] == "fate-9999-mysql-data")
    });
    let r = run(&b, objs.clone(), Some(&p), &to("v1.8.0"));
    assert_eq!(
        codes(&r),
        [("volume-lost".into(), "pv/fate-9999-mysql-data".into())],
        "in place, a lost volume is a difference"
    );
    b.version = Some("1.7.1-release".into());
    for c in b.components.iter_mut().filter(|c| c.follows_app) {
        c.version = Some("1.7.1-release".into());
    }
    let r = run(&b, objs, Some(&p), &to("v1.8.0"));
    assert_eq!(codes(&r), Vec::<(String, String)>::new(), "{r:#?}");
    assert!(
        r.notes.iter().any(|n| n.contains("pv/fate-9999-mysql-data")
            && n.contains("reinstall")
            && n.contains("1.7.1")),
        "{:#?}",
        r.notes
    );
}
