//! Plan tests: what adopt, rollback, retain and restore-policy would do in each state the
//! cluster can be in, including every state an interrupted run leaves behind.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kubectl_upgrade_migrate_pv::cleanup;
use kubectl_upgrade_migrate_pv::journal::CopyProof;
use kubectl_upgrade_migrate_pv::plan::{self, Action, AdoptState, PlanError};
use serde_json::json;

fn claim(name: &str, volume: &str, phase: &str) -> PersistentVolumeClaim {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "fate-9999", "uid": format!("uid-{name}")},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "nfs-client", "volumeName": volume, "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": phase}
    }))
    .unwrap()
}

fn volume(claim: Option<(&str, Option<&str>)>, policy: &str, phase: &str) -> PersistentVolume {
    let mut v = json!({
        "metadata": {"name": "pvc-0865"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "nfs-client", "persistentVolumeReclaimPolicy": policy},
        "status": {"phase": phase}
    });
    if let Some((name, uid)) = claim {
        v["spec"]["claimRef"] = json!({"namespace": "fate-9999", "name": name, "uid": uid});
    }
    serde_json::from_value(v).unwrap()
}

fn state(
    old: Option<PersistentVolumeClaim>,
    new: Option<PersistentVolumeClaim>,
    v: PersistentVolume,
) -> AdoptState {
    AdoptState {
        namespace: "fate-9999".into(),
        old,
        new,
        volume: Some(v),
        users: vec![],
        record: None,
    }
}

fn kinds(p: &plan::Plan) -> Vec<&'static str> {
    p.steps
        .iter()
        .map(|s| match s {
            Action::SetPolicy { .. } => "retain",
            Action::DeleteClaim { .. } => "delete",
            Action::PreBind { .. } => "prebind",
            Action::CreateClaim { .. } => "create",
            Action::WaitBound { .. } => "wait",
            Action::DeleteVolume { .. } => "delete-volume",
            Action::CheckUnchanged { .. } => "check",
            Action::Scale { .. } => "scale",
            Action::WaitUnmounted { .. } => "wait-unmounted",
        })
        .collect()
}

#[test]
fn a_fresh_adoption_takes_every_step_in_order() {
    let s = state(
        Some(claim("mysql-data", "pvc-0865", "Bound")),
        None,
        volume(Some(("mysql-data", Some("u1"))), "Delete", "Bound"),
    );
    let (p, record) = plan::adopt(&s, "mysql-data", "data-mysql-0").unwrap();
    assert_eq!(kinds(&p), ["retain", "delete", "prebind", "create", "wait"]);
    assert!(p.destructive());
    assert_eq!(record.original_policy, "Delete");
    assert_eq!(
        record.storage_class, "nfs-client",
        "the claim asks for the volume's class"
    );
    match &p.steps[3] {
        Action::CreateClaim {
            volume,
            size,
            access_modes,
            volume_mode,
            ..
        } => {
            assert_eq!(
                (volume.as_str(), size.as_str(), volume_mode.as_str()),
                ("pvc-0865", "1Gi", "Filesystem")
            );
            assert_eq!(access_modes, &["ReadWriteOnce"]);
        }
        other => panic!("{other:?}"),
    }
}

/// The states an interrupted adoption leaves, each resumed with only what is left.
#[test]
fn every_interrupted_state_resumes_with_the_remaining_steps() {
    let record = plan::record_of(
        &claim("mysql-data", "pvc-0865", "Bound"),
        &volume(Some(("mysql-data", Some("u1"))), "Delete", "Bound"),
        "data-mysql-0",
    );
    let with = |mut s: AdoptState| {
        s.record = Some(record.clone());
        s
    };
    // Stopped after Retain.
    let s = with(state(
        Some(claim("mysql-data", "pvc-0865", "Bound")),
        None,
        volume(Some(("mysql-data", Some("u1"))), "Retain", "Bound"),
    ));
    assert_eq!(
        kinds(&plan::adopt(&s, "mysql-data", "data-mysql-0").unwrap().0),
        ["delete", "prebind", "create", "wait"]
    );
    // Stopped after the delete: the volume is Released with the old claimRef.
    let s = with(state(
        None,
        None,
        volume(Some(("mysql-data", Some("u1"))), "Retain", "Released"),
    ));
    let (p, _) = plan::adopt(&s, "mysql-data", "data-mysql-0").unwrap();
    assert_eq!(kinds(&p), ["prebind", "create", "wait"]);
    assert!(!p.destructive(), "nothing destructive is left");
    // Stopped after the pre-bind.
    let s = with(state(
        None,
        None,
        volume(Some(("data-mysql-0", None)), "Retain", "Available"),
    ));
    assert_eq!(
        kinds(&plan::adopt(&s, "mysql-data", "data-mysql-0").unwrap().0),
        ["create", "wait"]
    );
    // Stopped after creating the claim.
    let s = with(state(
        None,
        Some(claim("data-mysql-0", "pvc-0865", "Pending")),
        volume(Some(("data-mysql-0", None)), "Retain", "Available"),
    ));
    assert_eq!(
        kinds(&plan::adopt(&s, "mysql-data", "data-mysql-0").unwrap().0),
        ["wait"]
    );
    // Done.
    let s = with(state(
        None,
        Some(claim("data-mysql-0", "pvc-0865", "Bound")),
        volume(Some(("data-mysql-0", Some("u2"))), "Retain", "Bound"),
    ));
    let (p, _) = plan::adopt(&s, "mysql-data", "data-mysql-0").unwrap();
    assert!(p.steps.is_empty(), "{:?}", p.steps);
    assert!(p.done.iter().any(|d| d.contains("is Bound")));
}

#[test]
fn refusals_change_nothing_and_say_why() {
    let mut s = state(
        Some(claim("mysql-data", "pvc-0865", "Bound")),
        None,
        volume(Some(("mysql-data", Some("u1"))), "Delete", "Bound"),
    );
    s.users = vec!["mysql-77f95d4844-8dfjj".into()];
    assert_eq!(
        plan::adopt(&s, "mysql-data", "data-mysql-0").unwrap_err(),
        PlanError::InUse {
            claim: "mysql-data".into(),
            pods: "pod/mysql-77f95d4844-8dfjj".into()
        }
    );
    let s = state(
        Some(claim("mysql-data", "", "Pending")),
        None,
        volume(None, "Delete", "Available"),
    );
    assert!(matches!(
        plan::adopt(&s, "mysql-data", "x-0"),
        Err(PlanError::NotBound(..))
    ));
    let s = state(
        Some(claim("mysql-data", "pvc-0865", "Bound")),
        Some(claim("data-mysql-0", "pvc-other", "Bound")),
        volume(Some(("mysql-data", Some("u1"))), "Delete", "Bound"),
    );
    assert_eq!(
        plan::adopt(&s, "mysql-data", "data-mysql-0").unwrap_err(),
        PlanError::TargetTaken("data-mysql-0".into(), "pvc-other".into())
    );
    let s = state(
        None,
        None,
        volume(Some(("someone-else", Some("u9"))), "Retain", "Bound"),
    );
    assert_eq!(
        plan::adopt(&s, "mysql-data", "data-mysql-0").unwrap_err(),
        PlanError::ClaimNotFound("mysql-data".into(), "fate-9999".into())
    );
}

#[test]
fn rollback_is_the_adoption_reversed() {
    let record = plan::record_of(
        &claim("mysql-data", "pvc-0865", "Bound"),
        &volume(Some(("mysql-data", Some("u1"))), "Delete", "Bound"),
        "data-mysql-0",
    );
    let mut s = state(
        None,
        Some(claim("data-mysql-0", "pvc-0865", "Bound")),
        volume(Some(("data-mysql-0", Some("u2"))), "Retain", "Bound"),
    );
    s.record = Some(record);
    // The state as adopt_state builds it for a rollback: old = the record's old claim (gone).
    let p = plan::rollback_adopt(&s, "data-mysql-0").unwrap();
    assert_eq!(kinds(&p), ["delete", "prebind", "create", "wait"]);
    assert!(matches!(&p.steps[0], Action::DeleteClaim { claim, .. } if claim == "data-mysql-0"));
    assert!(matches!(&p.steps[2], Action::CreateClaim { claim, .. } if claim == "mysql-data"));
    assert!(
        plan::rollback_adopt(&AdoptState::default(), "x").is_err(),
        "nothing to undo without a record"
    );
}

#[test]
fn restore_policy_never_puts_delete_on_a_volume_that_is_not_bound() {
    let mut bound = volume(Some(("data-mysql-0", Some("u"))), "Retain", "Bound");
    bound.metadata.annotations =
        Some([(plan::ORIGINAL_POLICY.to_string(), "Delete".to_string())].into());
    let mut released = bound.clone();
    released.metadata.name = Some("pvc-released".into());
    released.status.as_mut().unwrap().phase = Some("Released".into());
    let p = plan::restore_policy("fate-9999", &[bound, released]);
    assert_eq!(p.steps.len(), 1);
    assert!(
        matches!(&p.steps[0], Action::SetPolicy { volume, to, .. } if volume == "pvc-0865" && to == "Delete")
    );
    assert!(p.warnings[0].contains("pv/pvc-released is Released: it keeps Retain"));
}

#[test]
fn retain_skips_volumes_already_retained() {
    let claims = vec![
        (
            claim("a", "pvc-0865", "Bound"),
            Some(volume(Some(("a", Some("u"))), "Retain", "Bound")),
        ),
        (
            claim("b", "pvc-0865", "Bound"),
            Some(volume(Some(("b", Some("u"))), "Delete", "Bound")),
        ),
    ];
    let p = plan::retain("fate-9999", &claims).unwrap();
    assert_eq!(p.steps.len(), 1);
    assert!(!p.destructive());
    assert_eq!(p.done.len(), 1);
    assert!(plan::retain("fate-9999", &[(claim("c", "", "Pending"), None)]).is_err());
}

fn verified(dest_uid: &str) -> cleanup::VerifiedCopy {
    cleanup::VerifiedCopy {
        dest: "minio-new".into(),
        dest_namespace: "kubeflow".into(),
        proof: Some(CopyProof {
            source_claim_uid: "uid-minio-data-minio-0".into(),
            source_volume: "pvc-0865".into(),
            source_volume_uid: "uid-pv".into(),
            dest_claim_uid: dest_uid.into(),
            dest_volume: "pvc-new".into(),
            dest_volume_uid: "uid-pv-new".into(),
            manifest_sha256: "ab".repeat(32),
            verified_at: Some("2026-12-01T10:00:00Z".into()),
        }),
    }
}

fn cleanup_state(copy: Option<cleanup::VerifiedCopy>) -> cleanup::CleanupState {
    let mut v = volume(Some(("minio-data-minio-0", Some("u"))), "Delete", "Bound");
    v.metadata.uid = Some("uid-pv".into());
    let mut dv = volume(Some(("minio-new", Some("u"))), "Delete", "Bound");
    dv.metadata.name = Some("pvc-new".into());
    dv.metadata.uid = Some("uid-pv-new".into());
    cleanup::CleanupState {
        namespace: "kubeflow".into(),
        claim: "minio-data-minio-0".into(),
        copy,
        source: Some(claim("minio-data-minio-0", "pvc-0865", "Bound")),
        source_volume: Some(v),
        dest: Some(claim("minio-new", "pvc-new", "Bound")),
        dest_volume: Some(dv),
        users: vec![],
        image: "debian:bookworm-slim".into(),
    }
}

#[test]
fn cleanup_deletes_only_what_a_verified_copy_still_replaces() {
    let err = cleanup::plan(&cleanup_state(None)).unwrap_err();
    assert!(err.is_refusal());
    assert!(
        err.to_string()
            .contains("no verified copy of pvc/minio-data-minio-0"),
        "{err}"
    );
    let p = cleanup::plan(&cleanup_state(Some(verified("uid-minio-new")))).unwrap();
    assert_eq!(kinds(&p), ["check", "delete", "delete-volume"]);
    assert!(
        matches!(&p.steps[1], Action::DeleteClaim { uid: Some(u), .. } if u == "uid-minio-data-minio-0")
    );
    assert!(
        p.steps[2]
            .describe()
            .contains("and its data on the storage (reclaim policy Delete)"),
        "{}",
        p.steps[2].describe()
    );

    // The destination re-created under the same name is not the copy.
    let err = cleanup::plan(&cleanup_state(Some(verified("an-older-uid")))).unwrap_err();
    assert!(
        err.to_string().contains("deleted and created again"),
        "{err}"
    );
    // Gone, or being deleted.
    let mut s = cleanup_state(Some(verified("uid-minio-new")));
    s.dest = None;
    assert!(
        cleanup::plan(&s)
            .unwrap_err()
            .to_string()
            .contains("no longer exists")
    );
    let mut s = cleanup_state(Some(verified("uid-minio-new")));
    s.dest.as_mut().unwrap().metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()),
    );
    assert!(
        cleanup::plan(&s)
            .unwrap_err()
            .to_string()
            .contains("is being deleted")
    );
    // Mounted by a pod.
    let mut s = cleanup_state(Some(verified("uid-minio-new")));
    s.users = vec!["minio-0".into()];
    let err = cleanup::plan(&s).unwrap_err();
    assert!(
        err.is_refusal() && err.to_string().contains("pod/minio-0"),
        "{err}"
    );

    // Retain: the object goes, the data stays behind, and the plan says so.
    let mut s = cleanup_state(Some(verified("uid-minio-new")));
    s.source_volume
        .as_mut()
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .persistent_volume_reclaim_policy = Some("Retain".into());
    let p = cleanup::plan(&s).unwrap();
    assert!(
        p.steps[2]
            .describe()
            .contains("its data stays on the storage"),
        "{}",
        p.steps[2].describe()
    );
    assert!(
        p.steps[1].describe().contains("are kept: Retain"),
        "{}",
        p.steps[1].describe()
    );

    // A finished cleanup has nothing left.
    let mut s = cleanup_state(Some(verified("uid-minio-new")));
    s.source = None;
    s.source_volume = None;
    assert!(cleanup::plan(&s).unwrap().steps.is_empty());
}

#[test]
fn a_rollback_scales_back_only_the_owners_no_other_adoption_holds_down() {
    use kubectl_upgrade_migrate_pv::journal::Entry;
    use std::collections::BTreeMap;
    let pvc = claim("b-data", "pvc-0865", "Bound");
    let record = |old: &str, new: &str| {
        let mut r = plan::record_of(&pvc, &volume(None, "Delete", "Bound"), new);
        r.old_claim = old.into();
        r
    };
    let quiesced: BTreeMap<String, i32> = [
        ("deployment/app".to_string(), 2),
        ("deployment/web".to_string(), 1),
        ("deployment/up".to_string(), 3),
    ]
    .into();
    let current: BTreeMap<String, Option<i32>> = [
        ("deployment/app".to_string(), Some(0)),
        ("deployment/web".to_string(), Some(0)),
        ("deployment/up".to_string(), Some(3)),
    ]
    .into();
    let entry = |old: &str, new: &str, state: &str, owners: &[&str]| Entry::Adopt {
        record: record(old, new),
        state: state.into(),
        quiesced: owners.iter().map(|o| (o.to_string(), 1)).collect(),
    };
    let others: BTreeMap<String, Entry> = [
        (
            "adopt.b-new".to_string(),
            entry("b-data", "b-new", "done", &["deployment/app"]),
        ),
        // A pair already rolled back holds nothing.
        (
            "adopt.c-new".to_string(),
            entry("c-data", "c-new", "rolled-back", &["deployment/web"]),
        ),
    ]
    .into();
    let (steps, warnings) = plan::rollback_scales("shop", &quiesced, &current, &others);
    // web comes back; up already has its replicas; app is held by b-new's adoption.
    assert_eq!(
        steps,
        vec![Action::Scale {
            owner: "deployment/web".into(),
            from: 0,
            to: 1
        }]
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(
            "deployment/app stays at 0 replicas: it also mounts pvc/b-data (adopted by pvc/b-new)"
        ) && warnings[0]
            .contains("`kubectl upgrade-migrate-pv rollback b-new -n shop` brings it back to 2"),
        "{}",
        warnings[0]
    );
    // Nothing else holds it: the last rollback brings it back.
    let (steps, warnings) = plan::rollback_scales("shop", &quiesced, &current, &BTreeMap::new());
    assert_eq!(steps.len(), 2);
    assert!(warnings.is_empty());
}
