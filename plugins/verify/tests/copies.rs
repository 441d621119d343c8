//! A volume whose data migrate-pv copied into a new claim: Charmed Kubeflow 1.6 → 1.7
//! redeploys MinIO on a new claim, `kubectl upgrade-migrate-pv copy` fills it (verified, in its
//! journal ConfigMap) and `cleanup` removes the old claim and volume. The copy counts as the
//! recorded volume kept only on live evidence; every way the evidence fails is named.

use serde_json::{Value, json};
use upgrade_shared::profile;
use upgrade_shared::pv_journal::{CopyProof, Entry};
use upgrade_shared::version::Version;

use kubectl_upgrade_verify::baseline::Baseline;
use kubectl_upgrade_verify::compare::{Observed, Options, compare};
use kubectl_upgrade_verify::record;
use kubectl_upgrade_verify::report::{Report, Verdict};
use kubectl_upgrade_verify::state::State;
use kubectl_upgrade_verify::volumes;

const NS: &str = "kubeflow";
const OLD_CLAIM: &str = "minio-data-minio-0";
const NEW_CLAIM: &str = "minio-data-2a5fa6a7-minio-0";

fn statefulset(version: &str, template: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "minio", "namespace": NS, "uid": format!("sts-{version}"), "generation": 1,
            "labels": {"app.kubernetes.io/name": "minio", "app.kubernetes.io/version": version}},
        "spec": {
            "replicas": 1, "serviceName": "minio-endpoints",
            "selector": {"matchLabels": {"app.kubernetes.io/name": "minio"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "minio", "app.kubernetes.io/version": version}},
                "spec": {"containers": [{"name": "minio", "image": "minio/minio:RELEASE.2022-09-07T22-25-02Z",
                    "volumeMounts": [{"name": template, "mountPath": "/data"}]}]}
            },
            "volumeClaimTemplates": [{"metadata": {"name": template},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        },
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1,
            "availableReplicas": 1, "currentRevision": "r1", "updateRevision": "r1"}
    })
}

fn pod(version: &str, claim: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "minio-0", "namespace": NS, "uid": format!("pod-{version}"),
            "labels": {"app.kubernetes.io/name": "minio", "app.kubernetes.io/version": version}},
        "spec": {"containers": [{"name": "minio", "image": "minio/minio",
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn claim(name: &str, uid: &str, volume: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": NS, "uid": uid},
        "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": volume,
            "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Bound"}
    })
}

fn volume(name: &str, uid: &str, claim: &str, claim_uid: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "uid": uid},
        "spec": {"capacity": {"storage": "1Gi"}, "persistentVolumeReclaimPolicy": "Retain",
            "claimRef": {"namespace": NS, "name": claim, "uid": claim_uid},
            "hostPath": {"path": format!("/tmp/{name}")}},
        "status": {"phase": "Bound"}
    })
}

fn proof() -> CopyProof {
    CopyProof {
        source_claim_uid: "old-claim-uid".into(),
        source_volume: "pv-old".into(),
        source_volume_uid: "pv-old-uid".into(),
        dest_claim_uid: "new-claim-uid".into(),
        dest_volume: "pv-new".into(),
        dest_volume_uid: "pv-new-uid".into(),
        manifest_sha256: "ab".repeat(32),
        // Ten minutes after the baseline.
        verified_at: Some("2026-01-01T00:10:00Z".into()),
    }
}

fn copy_entry(state: &str, proof: Option<CopyProof>) -> Entry {
    Entry::Copy {
        source: OLD_CLAIM.into(),
        dest: NEW_CLAIM.into(),
        dest_namespace: None,
        quiesced: Default::default(),
        state: state.into(),
        proof,
    }
}

/// migrate-pv's journal ConfigMap as `kubectl get cm -o yaml` shows it.
fn journal(entry: &Entry) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kubectl-upgrade-migrate-pv", "namespace": NS},
        "data": {format!("copy.{NEW_CLAIM}"): serde_json::to_string(entry).expect("json")}
    })
}

fn state(objects: Vec<Value>) -> State {
    let mut s = State {
        namespace: NS.into(),
        ..State::default()
    };
    for o in objects {
        s.add(o).expect("object loads");
    }
    s
}

fn baseline() -> Baseline {
    let before = state(vec![
        statefulset("1.6", "minio-data"),
        pod("1.6", OLD_CLAIM),
        claim(OLD_CLAIM, "old-claim-uid", "pv-old"),
        volume("pv-old", "pv-old-uid", OLD_CLAIM, "old-claim-uid"),
    ]);
    let p = profile::builtin("kubeflow").expect("profile");
    record::baseline(&before, Some(&p), "2026-01-01T00:00:00Z".into())
}

/// The redeployed MinIO 1.7 on its new claim, the old claim and volume cleaned up.
fn redeployed() -> Vec<Value> {
    vec![
        statefulset("1.7", "minio-data-2a5fa6a7"),
        pod("1.7", NEW_CLAIM),
        claim(NEW_CLAIM, "new-claim-uid", "pv-new"),
        volume("pv-new", "pv-new-uid", NEW_CLAIM, "new-claim-uid"),
    ]
}

fn verify(objects: Vec<Value>) -> Report {
    let p = profile::builtin("kubeflow").expect("profile");
    compare(
        &baseline(),
        &state(objects),
        Some(&p),
        &Observed::default(),
        &Options {
            to: Some(Version::parse("1.7").expect("version")),
        },
    )
}

fn with(mut objects: Vec<Value>, more: Vec<Value>) -> Vec<Value> {
    objects.extend(more);
    objects
}

/// The only difference, with its code and object checked.
fn only_difference(r: &Report, code: &str) -> String {
    let shown: Vec<(&str, &str)> = r
        .differences
        .iter()
        .map(|d| (d.code.as_str(), d.object.as_str()))
        .collect();
    assert_eq!(shown, [(code, "pv/pv-old")], "{r:#?}");
    r.differences[0].message.clone()
}

#[test]
fn a_volume_copied_and_verified_into_the_claim_minio_uses_now_is_kept() {
    let r = verify(with(
        redeployed(),
        vec![journal(&copy_entry("verified", Some(proof())))],
    ));
    assert_eq!(r.differences, vec![], "{r:#?}");
    assert_eq!(r.verdict, Verdict::Verified, "{r:#?}");
    assert!(
        r.notes.iter().any(|n| n
            == "pv/pv-old: its data was copied by migrate-pv into pvc kubeflow/minio-data-2a5fa6a7-minio-0 (pv/pv-new) and verified; sts/minio uses that claim now"),
        "{:#?}",
        r.notes
    );
    assert!(
        !r.notes.iter().any(|n| n.contains("moved")),
        "the volume did not move, its data was copied: {:#?}",
        r.notes
    );
}

#[test]
fn before_the_cleanup_the_old_volume_bound_to_its_unused_claim_is_kept_by_the_copy() {
    let r = verify(with(
        redeployed(),
        vec![
            claim(OLD_CLAIM, "old-claim-uid", "pv-old"),
            volume("pv-old", "pv-old-uid", OLD_CLAIM, "old-claim-uid"),
            journal(&copy_entry("verified", Some(proof()))),
        ],
    ));
    assert_eq!(r.differences, vec![], "{r:#?}");
    assert!(
        r.notes.iter().any(|n| n.ends_with(
            "(the old volume is still there: kubectl upgrade-migrate-pv cleanup minio-data-minio-0 -n kubeflow deletes it)"
        )),
        "{:#?}",
        r.notes
    );
}

#[test]
fn without_a_journalled_copy_the_old_volume_is_lost() {
    let r = verify(redeployed());
    let message = only_difference(&r, "volume-lost");
    assert_eq!(
        message,
        "the volume that held pvc kubeflow/minio-data-minio-0 no longer exists"
    );
}

#[test]
fn a_copy_that_was_not_verified_does_not_count() {
    let r = verify(with(
        redeployed(),
        vec![journal(&copy_entry("differs", Some(proof())))],
    ));
    let message = only_difference(&r, "volume-lost");
    assert!(
        message.ends_with(
            "; migrate-pv's copy into pvc kubeflow/minio-data-2a5fa6a7-minio-0 is differs, not verified"
        ),
        "{message}"
    );
}

#[test]
fn a_destination_claim_created_again_since_the_copy_does_not_count() {
    let mut objects = redeployed();
    objects[2] = claim(NEW_CLAIM, "another-claim-uid", "pv-new");
    objects[3] = volume("pv-new", "pv-new-uid", NEW_CLAIM, "another-claim-uid");
    objects.push(journal(&copy_entry("verified", Some(proof()))));
    let message = only_difference(&verify(objects), "volume-lost");
    assert!(
        message.contains(
            "does not stand: pvc/minio-data-2a5fa6a7-minio-0 in namespace kubeflow was deleted and created again since the verified copy (uid another-claim-uid is not new-claim-uid)"
        ),
        "{message}"
    );
}

#[test]
fn a_destination_claim_bound_to_another_volume_does_not_count() {
    let mut objects = redeployed();
    objects[2] = claim(NEW_CLAIM, "new-claim-uid", "pv-other");
    objects[3] = volume("pv-other", "pv-other-uid", NEW_CLAIM, "new-claim-uid");
    objects.push(journal(&copy_entry("verified", Some(proof()))));
    let message = only_difference(&verify(objects), "volume-lost");
    assert!(
        message.contains(
            "is Bound on \"pv-other\", not Bound to pv/pv-new that holds the verified copy"
        ),
        "{message}"
    );
}

#[test]
fn a_destination_volume_created_again_since_the_copy_does_not_count() {
    let mut objects = redeployed();
    objects[3] = volume("pv-new", "pv-new-again", NEW_CLAIM, "new-claim-uid");
    objects.push(journal(&copy_entry("verified", Some(proof()))));
    let message = only_difference(&verify(objects), "volume-lost");
    assert!(
        message.contains("pv/pv-new was deleted and created again since the verified copy"),
        "{message}"
    );
}

#[test]
fn a_copy_taken_from_another_volume_under_the_same_claim_name_does_not_count() {
    let mut other = proof();
    other.source_volume_uid = "an-older-volume".into();
    let r = verify(with(
        redeployed(),
        vec![journal(&copy_entry("verified", Some(other)))],
    ));
    let message = only_difference(&r, "volume-lost");
    assert!(
        message.contains("was taken from pv/pv-old uid an-older-volume, not the recorded volume"),
        "{message}"
    );
}

#[test]
fn a_verified_copy_no_workload_uses_does_not_count() {
    let mut objects = redeployed();
    // MinIO 1.7 came up on yet another claim; the filled one is left unused.
    objects[0] = statefulset("1.7", "minio-data-ffffffff");
    objects[1] = pod("1.7", "minio-data-ffffffff-minio-0");
    objects.push(journal(&copy_entry("verified", Some(proof()))));
    let message = only_difference(&verify(objects), "volume-lost");
    assert!(
        message.ends_with(
            "stands, but no workload or pod uses pvc kubeflow/minio-data-2a5fa6a7-minio-0"
        ),
        "{message}"
    );
}

#[test]
fn contents_are_read_where_the_copy_holds_them() {
    let b = baseline();
    let v = b.volume(NS, OLD_CLAIM).expect("recorded");
    let now = state(with(
        redeployed(),
        vec![journal(&copy_entry("verified", Some(proof())))],
    ));
    assert_eq!(
        volumes::holder(v, &b.recorded_at, &now),
        Some((NS.to_string(), NEW_CLAIM.to_string()))
    );
    assert_eq!(
        volumes::holder(v, &b.recorded_at, &state(redeployed())),
        None
    );
}

#[test]
fn a_deep_digest_is_compared_where_the_copy_holds_the_tree() {
    let mut b = baseline();
    let summary = |digest: &str| kubectl_upgrade_verify::baseline::VolumeSummary {
        files: 7,
        bytes: 570,
        digest: Some(digest.into()),
        pod: "verify-x".into(),
    };
    b.volumes[0].summary = Some(summary(&"a".repeat(64)));
    let p = profile::builtin("kubeflow").expect("profile");
    let now = state(with(
        redeployed(),
        vec![journal(&copy_entry("verified", Some(proof())))],
    ));
    let run = |digest: &str| {
        compare(
            &b,
            &now,
            Some(&p),
            &Observed {
                digests: vec![((NS.into(), NEW_CLAIM.into()), summary(digest))],
                ..Observed::default()
            },
            &Options::default(),
        )
    };
    assert_eq!(run(&"a".repeat(64)).differences, vec![]);
    let r = run(&"b".repeat(64));
    assert_eq!(
        only_difference(&r, "volume-changed"),
        format!(
            "the tree on the volume that held pvc kubeflow/{OLD_CLAIM} changed since the record (read through pvc kubeflow/{NEW_CLAIM})"
        )
    );
    assert_eq!(
        r.differences[0].recorded,
        format!("sha256 {} (7 files, 570 bytes)", "a".repeat(64))
    );
}

#[test]
fn a_copy_verified_before_the_baseline_does_not_keep_the_volume() {
    // Written to the old volume after the copy and before the record: not in the copy.
    for at in ["2025-12-31T23:50:00Z", "2026-01-01T00:00:00Z"] {
        let mut early = proof();
        early.verified_at = Some(at.into());
        let r = verify(with(
            redeployed(),
            vec![journal(&copy_entry("verified", Some(early)))],
        ));
        let message = only_difference(&r, "volume-lost");
        assert!(
            message.ends_with(&format!(
                "migrate-pv's copy into pvc kubeflow/{NEW_CLAIM} was verified at {at}, the baseline recorded at 2026-01-01T00:00:00Z: the copy predates the baseline"
            )),
            "{message}"
        );
        let b = baseline();
        let v = b.volume(NS, OLD_CLAIM).expect("recorded");
        let now = state(with(
            redeployed(),
            vec![journal(&copy_entry(
                "verified",
                Some({
                    let mut p = proof();
                    p.verified_at = Some(at.into());
                    p
                }),
            ))],
        ));
        assert_eq!(volumes::holder(v, &b.recorded_at, &now), None, "{at}");
    }
}

#[test]
fn a_copy_journalled_without_its_verification_time_does_not_keep_the_volume() {
    let mut entry = serde_json::to_value(copy_entry("verified", Some(proof()))).expect("json");
    // As an earlier migrate-pv wrote it: no verifiedAt; it still parses.
    let proof_json = entry
        .pointer_mut("/proof")
        .and_then(|p| p.as_object_mut())
        .expect("a proof");
    assert!(proof_json.remove("verified_at").is_some());
    let old: Entry = serde_json::from_value(entry).expect("an old entry parses");
    let r = verify(with(redeployed(), vec![journal(&old)]));
    let message = only_difference(&r, "volume-lost");
    assert!(
        message.ends_with("was recorded without the time it was verified, so it may predate the baseline (copy again with this migrate-pv)"),
        "{message}"
    );
}

#[test]
fn a_deep_baseline_counts_files_by_the_digest_not_through_the_application() {
    let mut b = baseline();
    let summary = |files: u64, bytes: u64, digest: Option<&str>, pod: &str| {
        kubectl_upgrade_verify::baseline::VolumeSummary {
            files,
            bytes,
            digest: digest.map(Into::into),
            pod: pod.into(),
        }
    };
    let digest = "a".repeat(64);
    b.volumes[0].summary = Some(summary(7, 570, Some(&digest), "verify-x"));
    let p = profile::builtin("kubeflow").expect("profile");
    let now = state(with(
        redeployed(),
        vec![journal(&copy_entry("verified", Some(proof())))],
    ));
    let run = |digests: Vec<(
        (String, String),
        kubectl_upgrade_verify::baseline::VolumeSummary,
    )>| {
        compare(
            &b,
            &now,
            Some(&p),
            &Observed {
                // The application's user reads none of the volume's directories.
                summaries: vec![(
                    (NS.into(), NEW_CLAIM.into()),
                    summary(0, 0, None, "minio-0"),
                )],
                digests,
                ..Observed::default()
            },
            &Options::default(),
        )
    };
    let same = run(vec![(
        (NS.into(), NEW_CLAIM.into()),
        summary(7, 570, Some(&digest), "verify-x"),
    )]);
    assert_eq!(same.differences, vec![], "{same:#?}");
    let emptied = run(vec![(
        (NS.into(), NEW_CLAIM.into()),
        summary(0, 0, Some(&"e".repeat(64)), "verify-x"),
    )]);
    let codes: Vec<&str> = emptied
        .differences
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(codes, ["volume-changed", "volume-emptied"], "{emptied:#?}");
}
