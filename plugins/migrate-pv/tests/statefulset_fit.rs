//! The StatefulSet check of `adopt --for-statefulset`.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolume;
use kubectl_upgrade_migrate_pv::statefulset::check;
use serde_json::json;

fn sts(class: &str, modes: &[&str], size: &str, retention: Option<&str>) -> StatefulSet {
    let mut s = json!({
        "metadata": {"name": "mysql"},
        "spec": {
            "selector": {}, "serviceName": "mysql", "template": {},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"storageClassName": class, "accessModes": modes, "resources": {"requests": {"storage": size}}}}]
        }
    });
    if let Some(r) = retention {
        s["spec"]["persistentVolumeClaimRetentionPolicy"] =
            json!({"whenDeleted": r, "whenScaled": "Retain"});
    }
    serde_json::from_value(s).unwrap()
}

fn pv() -> PersistentVolume {
    serde_json::from_value(json!({"metadata": {"name": "pvc-0865"}, "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "nfs-client"}})).unwrap()
}

#[test]
fn a_matching_template_fits() {
    let fit = check(
        &sts("nfs-client", &["ReadWriteOnce"], "1024Mi", None),
        "data-mysql-0",
        &pv(),
    );
    assert!(fit.errors.is_empty() && fit.warnings.is_empty(), "{fit:?}");
}

#[test]
fn wrong_names_modes_and_deleting_policies_are_flagged() {
    let fit = check(
        &sts("nfs-client", &["ReadWriteOnce"], "1Gi", None),
        "mysql-data-0",
        &pv(),
    );
    assert!(
        fit.errors[0].contains("not a claim of sts/mysql"),
        "{fit:?}"
    );
    assert!(fit.errors[0].contains("data-mysql-0"), "{fit:?}");
    assert!(
        !check(
            &sts("nfs-client", &["ReadWriteOnce"], "1Gi", None),
            "data-mysql-x",
            &pv()
        )
        .errors
        .is_empty()
    );
    let fit = check(
        &sts("nfs-client", &["ReadWriteMany"], "1Gi", None),
        "data-mysql-0",
        &pv(),
    );
    assert!(fit.errors[0].contains("ReadWriteMany"), "{fit:?}");
    let fit = check(
        &sts("fast", &["ReadWriteOnce"], "2Gi", Some("Delete")),
        "data-mysql-0",
        &pv(),
    );
    assert!(fit.errors.is_empty());
    assert_eq!(fit.warnings.len(), 3, "{fit:?}");
    assert!(
        fit.warnings
            .iter()
            .any(|w| w.contains("whenDeleted: Delete"))
    );
    assert!(fit.warnings.iter().any(|w| w.contains("class \"fast\"")));
}

/// Issue 8, item 12: sizes are printed as quantities (Gi, Mi), not raw byte counts.
#[test]
fn issue8_12_a_template_larger_than_the_volume_names_both_sizes_in_gi() {
    let fit = check(
        &sts("nfs-client", &["ReadWriteOnce"], "20Gi", None),
        "data-mysql-0",
        &pv(),
    );
    assert_eq!(fit.warnings.len(), 1, "{fit:?}");
    assert!(
        fit.warnings[0].contains("asks for 20Gi but pv/pvc-0865 holds 1Gi"),
        "{fit:?}"
    );
    assert!(!fit.warnings[0].contains("bytes"), "{fit:?}");
}
