//! `upgrade_shared::watch::Changes` against the simulated API server: after a list it says
//! when something changed since, even a change made before the watch opened, waits out its
//! limit when nothing did, and goes on after the server drops the watch.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use upgrade_e2e::sim::{SimCluster, SimOptions};
use upgrade_shared::list::list_versioned;
use upgrade_shared::watch::Changes;

const WAIT: Duration = Duration::from_secs(30);

async fn env() -> (Api<ConfigMap>, SimCluster, tempfile::TempDir) {
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
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    let client = Client::try_from(config).expect("client");
    (Api::default_namespaced(client), cluster, dir)
}

async fn create(api: &Api<ConfigMap>, name: &str) {
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
        .expect("config map");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("created");
}

async fn list(api: &Api<ConfigMap>) -> String {
    list_versioned(api.clone(), ListParams::default(), "configmaps", "default")
        .await
        .expect("list")
        .1
}

#[tokio::test]
async fn nothing_changed_waits_out_the_limit_and_a_change_ends_the_wait() {
    let (api, _cluster, _dir) = env().await;
    let version = list(&api).await;
    assert!(!version.is_empty(), "a list carries its resourceVersion");
    let mut changes = Changes::new(api.clone());
    assert!(
        !changes.next(&version, Duration::from_millis(300)).await,
        "nothing changed after the list"
    );
    create(&api, "a").await;
    assert!(changes.next(&version, WAIT).await, "the new config map");
}

#[tokio::test]
async fn a_change_between_the_list_and_the_watch_is_seen() {
    let (api, _cluster, _dir) = env().await;
    let version = list(&api).await;
    create(&api, "a").await;
    let mut changes = Changes::new(api.clone());
    assert!(
        changes.next(&version, WAIT).await,
        "the watch from the list's version replays the change"
    );
}

#[tokio::test]
async fn a_dropped_watch_says_read_again_and_opens_from_the_newer_version() {
    let (api, cluster, _dir) = env().await;
    let version = list(&api).await;
    let mut changes = Changes::new(api.clone());
    assert!(!changes.next(&version, Duration::from_millis(300)).await);
    cluster.faults().drop_watches();
    assert!(
        changes.next(&version, WAIT).await,
        "a watch the server ended means: read again"
    );
    let newer = list(&api).await;
    create(&api, "b").await;
    assert!(
        changes.next(&newer, WAIT).await,
        "the watch opened again sees the change"
    );
}
