//! Conformance of the simulated cluster through kube-rs: one behaviour per test.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;
use upgrade_e2e::sim::{SimCluster, SimOptions};

const WAIT: Duration = Duration::from_secs(30);

struct Env {
    client: Client,
    cluster: SimCluster,
    dir: tempfile::TempDir,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = SimCluster::start(SimOptions {
        data_dir: dir.path().join("data"),
        scenarios: vec![],
    })
    .await
    .expect("cluster starts");
    let path = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&path).expect("kubeconfig");
    let kc = Kubeconfig::read_from(&path).expect("kubeconfig parses");
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    // kube-rs retries 429/503/504 for minutes by default; these tests look at the server's answer.
    config.default_retry = false;
    assert_eq!(config.default_namespace, "default");
    Env {
        client: Client::try_from(config).expect("client"),
        cluster,
        dir,
    }
}

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("valid object")
}

async fn until<T, F: Fn(&T) -> bool>(api: &Api<T>, name: &str, pred: F) -> T
where
    T: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(o) = api.get(name).await
            && pred(&o)
        {
            return o;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never reached the expected state: {:?}",
            api.get(name).await.ok()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn phase_pvc(c: &PersistentVolumeClaim) -> String {
    c.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

fn phase_pv(v: &PersistentVolume) -> String {
    v.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn stale_update_is_conflict_with_the_apiserver_message() {
    let e = env().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(e.client.clone());
    let created = cms
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "c"}, "data": {"a": "1"}})),
        )
        .await
        .expect("create");
    let mut newer = created.clone();
    newer.data = Some([("a".to_string(), "2".to_string())].into());
    cms.replace("c", &PostParams::default(), &newer)
        .await
        .expect("first update");
    let err = api_error(
        cms.replace("c", &PostParams::default(), &newer)
            .await
            .expect_err("stale"),
    );
    assert_eq!(err.code, 409);
    assert_eq!(err.reason, "Conflict");
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again"
    );
}

#[tokio::test]
async fn resource_versions_increase_and_generation_follows_spec() {
    let e = env().await;
    let sts: Api<StatefulSet> = Api::default_namespaced(e.client.clone());
    let s = sts
        .create(&PostParams::default(), &from(json!({"metadata": {"name": "s"}, "spec": {"serviceName": "s", "replicas": 0, "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})))
        .await
        .expect("create");
    assert_eq!(s.metadata.generation, Some(1));
    let rv1: u64 = s
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default()
        .parse()
        .expect("numeric rv");
    let patched = sts
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("label patch");
    assert_eq!(patched.metadata.generation, Some(1));
    let patched = sts
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0, "minReadySeconds": 5}})),
        )
        .await
        .expect("spec patch");
    assert_eq!(patched.metadata.generation, Some(2));
    let rv2: u64 = patched
        .metadata
        .resource_version
        .unwrap_or_default()
        .parse()
        .expect("numeric rv");
    assert!(rv2 > rv1);
}

#[tokio::test]
async fn pvc_requests_cannot_shrink_and_spec_is_immutable() {
    let e = env().await;
    let pvs: Api<PersistentVolume> = Api::all(e.client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(e.client.clone());
    let path = e.dir.path().join("vol");
    std::fs::create_dir_all(&path).expect("dir");
    pvs.create(&PostParams::default(), &from(json!({"metadata": {"name": "v"}, "spec": {"capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": path}}}))).await.expect("pv");
    pvcs.create(&PostParams::default(), &from(json!({"metadata": {"name": "d"}, "spec": {"storageClassName": "", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))).await.expect("pvc");
    until(&pvcs, "d", |c| phase_pvc(c) == "Bound").await;
    let err = api_error(
        pvcs.patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": "500Mi"}}}})),
        )
        .await
        .expect_err("shrink"),
    );
    assert_eq!(err.code, 422);
    assert_eq!(
        err.message,
        "PersistentVolumeClaim \"d\" is invalid: spec.resources.requests.storage: Forbidden: field can not be less than previous value"
    );
    let err = api_error(
        pvcs.patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"accessModes": ["ReadWriteMany"]}})),
        )
        .await
        .expect_err("immutable"),
    );
    assert_eq!(err.code, 422);
    assert!(err.message.starts_with("PersistentVolumeClaim \"d\" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"), "{}", err.message);
    let err = api_error(
        pvcs.patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}})),
        )
        .await
        .expect_err("no expandable class"),
    );
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "persistentvolumeclaims \"d\" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"
    );
}

#[tokio::test]
async fn released_volume_keeps_its_claim_ref_until_prebound() {
    let e = env().await;
    let pvs: Api<PersistentVolume> = Api::all(e.client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(e.client.clone());
    let path = e.dir.path().join("kept");
    std::fs::create_dir_all(&path).expect("dir");
    std::fs::write(path.join("data"), "precious").expect("write");
    pvs.create(&PostParams::default(), &from(json!({"metadata": {"name": "kept"}, "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "manual", "hostPath": {"path": path}}}))).await.expect("pv");
    let claim = json!({"metadata": {"name": "old"}, "spec": {"storageClassName": "manual", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    pvcs.create(&PostParams::default(), &from(claim))
        .await
        .expect("claim");
    let bound = until(&pvcs, "old", |c| phase_pvc(c) == "Bound").await;
    let old_uid = bound.metadata.uid.clone().expect("uid");
    pvcs.delete("old", &DeleteParams::default())
        .await
        .expect("delete claim");
    let released = until(&pvs, "kept", |v| phase_pv(v) == "Released").await;
    let claim_ref = released
        .spec
        .and_then(|s| s.claim_ref)
        .expect("claimRef kept");
    assert_eq!(claim_ref.name.as_deref(), Some("old"));
    assert_eq!(claim_ref.uid.as_deref(), Some(old_uid.as_str()));
    assert_eq!(
        std::fs::read_to_string(path.join("data")).expect("data kept"),
        "precious"
    );

    let new_claim = json!({"metadata": {"name": "new"}, "spec": {"storageClassName": "manual", "volumeName": "kept", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    pvcs.create(&PostParams::default(), &from(new_claim))
        .await
        .expect("new claim");
    // Two binder resyncs later the claim still waits for the volume.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(phase_pvc(&pvcs.get("new").await.expect("get")), "Pending");
    pvs.patch("kept", &PatchParams::default(), &Patch::Merge(json!({"spec": {"claimRef": {"namespace": "default", "name": "new", "uid": null, "resourceVersion": null}}}))).await.expect("pre-bind");
    until(&pvcs, "new", |c| phase_pvc(c) == "Bound").await;
    until(&pvs, "kept", |v| phase_pv(v) == "Bound").await;
}

#[tokio::test]
async fn dynamic_volume_with_delete_policy_goes_with_its_claim() {
    let e = env().await;
    let sc: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(e.client.clone());
    sc.create(&PostParams::default(), &from(json!({"metadata": {"name": "nfs-client"}, "provisioner": "cluster.local/nfs", "reclaimPolicy": "Delete"}))).await.expect("class");
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(e.client.clone());
    let pvs: Api<PersistentVolume> = Api::all(e.client.clone());
    let c = pvcs.create(&PostParams::default(), &from(json!({"metadata": {"name": "data"}, "spec": {"storageClassName": "nfs-client", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))).await.expect("claim");
    let bound = until(&pvcs, "data", |c| phase_pvc(c) == "Bound").await;
    let pv_name = format!("pvc-{}", c.metadata.uid.expect("uid"));
    assert_eq!(
        bound.spec.and_then(|s| s.volume_name).as_deref(),
        Some(pv_name.as_str())
    );
    let pv = pvs.get(&pv_name).await.expect("provisioned");
    let spec = pv.spec.expect("spec");
    assert_eq!(
        spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Delete")
    );
    let dir = std::path::PathBuf::from(spec.host_path.expect("hostPath").path);
    assert!(dir.is_dir());
    assert!(
        pv.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"kubernetes.io/pv-protection".to_string())
    );
    pvcs.delete("data", &DeleteParams::default())
        .await
        .expect("delete");
    let deadline = tokio::time::Instant::now() + WAIT;
    while pvs.get_opt(&pv_name).await.expect("get").is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "volume never deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!dir.exists(), "directory {} kept", dir.display());
}

#[tokio::test]
async fn statefulset_claims_are_named_per_ordinal_and_reused() {
    let e = env().await;
    let sc: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(e.client.clone());
    sc.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "std"}, "provisioner": "sim/hostpath"})),
    )
    .await
    .expect("class");
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(e.client.clone());
    pvcs.create(&PostParams::default(), &from(json!({"metadata": {"name": "data-web-0", "labels": {"mine": "yes"}}, "spec": {"storageClassName": "std", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))).await.expect("pre-made claim");
    let sts: Api<StatefulSet> = Api::default_namespaced(e.client.clone());
    sts.create(&PostParams::default(), &from(json!({"metadata": {"name": "web"}, "spec": {"serviceName": "web", "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1000"], "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"storageClassName": "std", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}))).await.expect("sts");
    until(&sts, "web", |s| {
        s.status.as_ref().and_then(|st| st.ready_replicas) == Some(2)
    })
    .await;
    let claims = pvcs.list(&ListParams::default()).await.expect("list");
    let mut names: Vec<String> = claims
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["data-web-0", "data-web-1"]);
    assert_eq!(
        pvcs.get("data-web-0")
            .await
            .expect("get")
            .metadata
            .labels
            .unwrap_or_default()
            .get("mine")
            .map(String::as_str),
        Some("yes")
    );
    let pods: Api<Pod> = Api::default_namespaced(e.client.clone());
    let p0 = pods.get("web-0").await.expect("pod");
    let vols = p0.spec.and_then(|s| s.volumes).unwrap_or_default();
    assert_eq!(
        vols.iter()
            .find(|v| v.name == "data")
            .and_then(|v| v.persistent_volume_claim.as_ref())
            .map(|c| c.claim_name.as_str()),
        Some("data-web-0")
    );
}

#[tokio::test]
async fn selectors_and_pagination() {
    let e = env().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(e.client.clone());
    for i in 0..5 {
        cms.create(&PostParams::default(), &from(json!({"metadata": {"name": format!("c{i}"), "labels": {"parity": if i % 2 == 0 { "even" } else { "odd" }}}}))).await.expect("create");
    }
    let even = cms
        .list(&ListParams::default().labels("parity=even"))
        .await
        .expect("list");
    assert_eq!(even.items.len(), 3);
    let named = cms
        .list(&ListParams::default().fields("metadata.name=c3"))
        .await
        .expect("list");
    assert_eq!(named.items.len(), 1);
    let page = cms
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    assert_eq!(page.items.len(), 2);
    let token = page.metadata.continue_.clone().expect("continue token");
    assert_eq!(page.metadata.remaining_item_count, Some(3));
    let rest = cms
        .list(&ListParams::default().limit(10).continue_token(&token))
        .await
        .expect("page 2");
    let names: Vec<_> = rest
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(names, ["c2", "c3", "c4"]);
    let err = api_error(
        cms.list(&ListParams::default().fields("data.a=b"))
            .await
            .expect_err("unsupported field"),
    );
    assert_eq!(err.code, 400);
}

#[tokio::test]
async fn watch_resumes_from_a_resource_version_and_expires_when_too_old() {
    let e = env().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(e.client.clone());
    let first = cms
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "a"}})),
        )
        .await
        .expect("create");
    let rv = first.metadata.resource_version.clone().expect("rv");
    cms.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "b"}})),
    )
    .await
    .expect("create");
    let mut stream = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    match stream.try_next().await.expect("event") {
        Some(WatchEvent::Added(cm)) => assert_eq!(cm.metadata.name.as_deref(), Some("b")),
        other => panic!("unexpected {other:?}"),
    }
    e.cluster.store().set_history_limit(1);
    cms.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "c"}})),
    )
    .await
    .expect("create");
    cms.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "d"}})),
    )
    .await
    .expect("create");
    let mut old = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    match old.try_next().await.expect("event") {
        Some(WatchEvent::Error(err)) => {
            assert_eq!(err.code, 410);
            assert_eq!(err.reason, "Expired");
        }
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test]
async fn finalizers_hold_deletion_and_foreground_waits_for_dependents() {
    let e = env().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(e.client.clone());
    let owner = cms
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "owner", "finalizers": ["example.com/hold"]}})),
        )
        .await
        .expect("owner");
    let owner_ref = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid, "blockOwnerDeletion": true});
    cms.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "dep", "ownerReferences": [owner_ref]}})),
    )
    .await
    .expect("dependent");
    cms.delete("owner", &DeleteParams::foreground())
        .await
        .expect("delete");
    let held = cms.get("owner").await.expect("still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    let deadline = tokio::time::Instant::now() + WAIT;
    while cms.get_opt("dep").await.expect("get").is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "dependent never deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        cms.get_opt("owner").await.expect("get").is_some(),
        "the finalizer must hold the owner"
    );
    cms.patch(
        "owner",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("drop finalizer");
    assert!(cms.get_opt("owner").await.expect("get").is_none());
}

#[tokio::test]
async fn eviction_is_refused_while_the_budget_allows_no_disruption() {
    let e = env().await;
    let pods: Api<Pod> = Api::default_namespaced(e.client.clone());
    pods.create(&PostParams::default(), &from(json!({"metadata": {"name": "p", "labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1000"]}]}}))).await.expect("pod");
    let pdbs: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
        Api::default_namespaced(e.client.clone());
    pdbs.create(&PostParams::default(), &from(json!({"metadata": {"name": "db"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}}))).await.expect("pdb");
    until(&pdbs, "db", |p| {
        p.status
            .as_ref()
            .is_some_and(|s| s.current_healthy == 1 && s.desired_healthy == 1)
    })
    .await;
    let err = api_error(
        pods.evict("p", &Default::default())
            .await
            .expect_err("refused"),
    );
    assert_eq!(err.code, 429);
    assert_eq!(
        err.message,
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    pdbs.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"minAvailable": 0}})),
    )
    .await
    .expect("relax");
    until(&pdbs, "db", |p| {
        p.status
            .as_ref()
            .is_some_and(|s| s.disruptions_allowed == 1)
    })
    .await;
    pods.evict("p", &Default::default()).await.expect("evicted");
}

#[tokio::test]
async fn injected_faults_fail_the_next_requests() {
    let e = env().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(e.client.clone());
    e.cluster
        .faults()
        .fail_next("configmaps", Some("list"), 2, 500);
    for _ in 0..2 {
        let err = api_error(
            cms.list(&ListParams::default())
                .await
                .expect_err("injected"),
        );
        assert_eq!((err.code, err.reason.as_str()), (500, "InternalError"));
    }
    cms.list(&ListParams::default())
        .await
        .expect("third list succeeds");
}

#[tokio::test]
async fn wait_for_first_consumer_binds_when_a_pod_is_scheduled_but_not_for_pinned_pods() {
    let e = env().await;
    let sc: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(e.client.clone());
    sc.create(&PostParams::default(), &from(json!({"metadata": {"name": "late"}, "provisioner": "sim/hostpath", "volumeBindingMode": "WaitForFirstConsumer"}))).await.expect("class");
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(e.client.clone());
    let pods: Api<Pod> = Api::default_namespaced(e.client.clone());
    for name in ["scheduled", "pinned"] {
        pvcs.create(&PostParams::default(), &from(json!({"metadata": {"name": name}, "spec": {"storageClassName": "late", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))).await.expect("claim");
    }
    let pod = |name: &str, pinned: bool| {
        let mut p = json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1000"], "volumeMounts": [{"name": "d", "mountPath": "/d"}]}], "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": name}}]}});
        if pinned {
            p["spec"]["nodeName"] = json!("sim-node");
        }
        from::<Pod>(p)
    };
    pods.create(&PostParams::default(), &pod("pinned", true))
        .await
        .expect("pinned pod");
    pods.create(&PostParams::default(), &pod("scheduled", false))
        .await
        .expect("pod");
    let bound = until(&pvcs, "scheduled", |c| phase_pvc(c) == "Bound").await;
    assert_eq!(
        bound
            .metadata
            .annotations
            .unwrap_or_default()
            .get("volume.kubernetes.io/selected-node")
            .map(String::as_str),
        Some("sim-node")
    );
    until(&pods, "scheduled", |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await;
    let pinned = pvcs.get("pinned").await.expect("get");
    assert_eq!(phase_pvc(&pinned), "Pending");
    assert_eq!(
        pods.get("pinned")
            .await
            .expect("get")
            .status
            .and_then(|s| s.phase)
            .as_deref(),
        Some("Pending")
    );
}

#[tokio::test]
async fn pod_spec_is_immutable_except_images() {
    let e = env().await;
    let pods: Api<Pod> = Api::default_namespaced(e.client.clone());
    pods.create(&PostParams::default(), &from(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox:1", "command": ["sleep", "1000"]}]}}))).await.expect("pod");
    pods.patch(
        "p",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}})),
    )
    .await
    .expect("image change is allowed");
    let err = api_error(
        pods.patch(
            "p",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"containers": [{"name": "c", "command": ["true"]}]}}),
            ),
        )
        .await
        .expect_err("command change"),
    );
    assert_eq!(err.code, 422);
    assert!(err.message.starts_with("Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"), "{}", err.message);
}

#[tokio::test]
async fn orphan_propagation_keeps_dependents_without_the_owner_reference() {
    let e = env().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(e.client.clone());
    let owner = cms
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "owner"}})),
        )
        .await
        .expect("owner");
    let owner_ref = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid});
    cms.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "dep", "ownerReferences": [owner_ref]}})),
    )
    .await
    .expect("dependent");
    cms.delete("owner", &DeleteParams::orphan())
        .await
        .expect("delete");
    let deadline = tokio::time::Instant::now() + WAIT;
    while cms.get_opt("owner").await.expect("get").is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "owner never deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dep = cms.get("dep").await.expect("dependent kept");
    assert!(dep.metadata.owner_references.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn claims_of_expandable_classes_grow_their_volume() {
    let e = env().await;
    let sc: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(e.client.clone());
    sc.create(&PostParams::default(), &from(json!({"metadata": {"name": "grow"}, "provisioner": "sim/hostpath", "allowVolumeExpansion": true}))).await.expect("class");
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(e.client.clone());
    pvcs.create(&PostParams::default(), &from(json!({"metadata": {"name": "d"}, "spec": {"storageClassName": "grow", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))).await.expect("claim");
    until(&pvcs, "d", |c| phase_pvc(c) == "Bound").await;
    pvcs.patch(
        "d",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": "3Gi"}}}})),
    )
    .await
    .expect("grow");
    let grown = until(&pvcs, "d", |c| {
        c.status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get("storage"))
            .is_some_and(|q| q.0 == "3Gi")
    })
    .await;
    let pvs: Api<PersistentVolume> = Api::all(e.client.clone());
    let pv = pvs
        .get(&grown.spec.and_then(|s| s.volume_name).expect("volume"))
        .await
        .expect("pv");
    assert_eq!(
        pv.spec
            .and_then(|s| s.capacity)
            .and_then(|c| c.get("storage").map(|q| q.0.clone()))
            .as_deref(),
        Some("3Gi")
    );
}

#[tokio::test]
async fn streaming_list_watch_ends_initial_events_with_a_bookmark() {
    let e = env().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(e.client.clone());
    cms.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "a"}})),
    )
    .await
    .expect("create");
    let mut stream = cms
        .watch(&WatchParams::streaming_lists(), "")
        .await
        .expect("watch")
        .boxed();
    match stream.try_next().await.expect("event") {
        Some(WatchEvent::Added(cm)) => assert_eq!(cm.metadata.name.as_deref(), Some("a")),
        other => panic!("unexpected {other:?}"),
    }
    match stream.try_next().await.expect("event") {
        Some(WatchEvent::Bookmark(b)) => assert_eq!(
            b.metadata
                .annotations
                .get("k8s.io/initial-events-end")
                .map(String::as_str),
            Some("true")
        ),
        other => panic!("expected the initial-events-end bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn pods_wait_when_their_volume_is_pinned_to_another_node() {
    let e = env().await;
    let pvs: Api<PersistentVolume> = Api::all(e.client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(e.client.clone());
    let pods: Api<Pod> = Api::default_namespaced(e.client.clone());
    let path = e.dir.path().join("local");
    std::fs::create_dir_all(&path).expect("dir");
    pvs.create(&PostParams::default(), &from(json!({"metadata": {"name": "elsewhere"}, "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "local", "local": {"path": path},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["other-node"]}]}]}}}}))).await.expect("pv");
    pvcs.create(&PostParams::default(), &from(json!({"metadata": {"name": "d"}, "spec": {"storageClassName": "local", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))).await.expect("claim");
    until(&pvcs, "d", |c| phase_pvc(c) == "Bound").await;
    pods.create(&PostParams::default(), &from(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1000"]}], "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "d"}}]}}))).await.expect("pod");
    let p = until(&pods, "p", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "PodScheduled" && c.status == "False")
            })
    })
    .await;
    let cond = p
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .expect("condition");
    assert!(
        cond.message
            .unwrap_or_default()
            .contains("volume node affinity conflict")
    );
    assert!(p.spec.and_then(|s| s.node_name).is_none());
}

#[tokio::test]
async fn released_volume_binds_a_new_claim_once_its_claim_ref_is_removed() {
    let e = env().await;
    let pvs: Api<PersistentVolume> = Api::all(e.client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(e.client.clone());
    let path = e.dir.path().join("kept");
    std::fs::create_dir_all(&path).expect("dir");
    pvs.create(&PostParams::default(), &from(json!({"metadata": {"name": "kept"}, "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "manual", "hostPath": {"path": path}}}))).await.expect("pv");
    let claim = |name: &str| {
        from::<PersistentVolumeClaim>(
            json!({"metadata": {"name": name}, "spec": {"storageClassName": "manual", "volumeName": "kept", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
        )
    };
    pvcs.create(&PostParams::default(), &claim("old"))
        .await
        .expect("claim");
    until(&pvcs, "old", |c| phase_pvc(c) == "Bound").await;
    pvcs.delete("old", &DeleteParams::default())
        .await
        .expect("delete");
    until(&pvs, "kept", |v| phase_pv(v) == "Released").await;
    pvcs.create(&PostParams::default(), &claim("new"))
        .await
        .expect("new claim");
    pvs.patch(
        "kept",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"claimRef": null}})),
    )
    .await
    .expect("clear claimRef");
    until(&pvcs, "new", |c| phase_pvc(c) == "Bound").await;
    let bound = until(&pvs, "kept", |v| phase_pv(v) == "Bound").await;
    assert_eq!(
        bound
            .spec
            .and_then(|s| s.claim_ref)
            .and_then(|r| r.name)
            .as_deref(),
        Some("new")
    );
}
