//! Exec through kube-rs, fault injection, jobs and namespace deletion on the simulated cluster.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, AttachParams, DeleteParams, PostParams, WatchParams};
use kube::{Client, Config};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use upgrade_e2e::sim::{SimCluster, SimOptions};

const WAIT: Duration = Duration::from_secs(30);

async fn env() -> (Client, SimCluster, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = SimCluster::start(SimOptions {
        data_dir: dir.path().join("data"),
        scenarios: vec![],
    })
    .await
    .expect("cluster starts");
    let mut config = Config::new(cluster.url().parse().expect("url"));
    config.default_retry = false;
    (Client::try_from(config).expect("client"), cluster, dir)
}

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("valid object")
}

async fn running_pod(client: &Client, name: &str, restart: &str) -> Api<Pod> {
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(&PostParams::default(), &from(json!({"metadata": {"name": name}, "spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1000"]}]}}))).await.expect("pod");
    eventually("pod running", || async {
        pods.get(name)
            .await
            .expect("get")
            .status
            .and_then(|s| s.phase)
            .as_deref()
            == Some("Running")
    })
    .await;
    pods
}

async fn eventually<F, Fut>(what: &str, f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never happened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn kube_exec_streams_stdin_to_stdout_and_reports_success() {
    let (client, _c, _d) = env().await;
    let pods = running_pod(&client, "p", "Always").await;
    let mut proc = pods
        .exec(
            "p",
            ["sh", "-c", "tr a-z A-Z"],
            &AttachParams::default().stdin(true).stderr(false),
        )
        .await
        .expect("exec");
    let mut stdin = proc.stdin().expect("stdin");
    let mut stdout = proc.stdout().expect("stdout");
    let status = proc.take_status().expect("status");
    stdin
        .write_all(b"hello through exec\n")
        .await
        .expect("write");
    stdin.shutdown().await.expect("close stdin");
    let mut out = String::new();
    stdout.read_to_string(&mut out).await.expect("read");
    assert_eq!(out, "HELLO THROUGH EXEC\n");
    let st = status.await.expect("status arrives");
    assert_eq!(st.status.as_deref(), Some("Success"));
    proc.join().await.expect("join");
}

#[tokio::test]
async fn kube_exec_reports_the_exit_code() {
    let (client, _c, _d) = env().await;
    let pods = running_pod(&client, "p", "Always").await;
    let mut proc = pods
        .exec(
            "p",
            ["sh", "-c", "echo oops >&2; exit 4"],
            &AttachParams::default().stderr(true),
        )
        .await
        .expect("exec");
    let mut stderr = proc.stderr().expect("stderr");
    let status = proc.take_status().expect("status");
    let mut err = String::new();
    stderr.read_to_string(&mut err).await.expect("read");
    assert_eq!(err, "oops\n");
    let st = status.await.expect("status arrives");
    assert_eq!(st.status.as_deref(), Some("Failure"));
    assert_eq!(st.reason.as_deref(), Some("NonZeroExitCode"));
    let cause = &st.details.expect("details").causes.expect("causes")[0];
    assert_eq!(
        (cause.reason.as_deref(), cause.message.as_deref()),
        (Some("ExitCode"), Some("4"))
    );
}

#[tokio::test]
async fn cut_exec_stream_ends_without_a_status() {
    let (client, cluster, _d) = env().await;
    let pods = running_pod(&client, "p", "Always").await;
    let mut proc = pods
        .exec(
            "p",
            ["sh", "-c", "echo started; sleep 1000"],
            &AttachParams::default(),
        )
        .await
        .expect("exec");
    let mut stdout = proc.stdout().expect("stdout");
    let status = proc.take_status().expect("status");
    let mut first = [0u8; 8];
    stdout.read_exact(&mut first).await.expect("read");
    cluster.faults().cut_exec_streams();
    // kube-rs reports the broken connection from `join()`; its stdout reader never sees EOF
    // after an error, so callers must watch `join()` (or the status) alongside the output.
    let joined = tokio::time::timeout(WAIT, proc.join())
        .await
        .expect("join ends");
    assert!(joined.is_err(), "a cut stream is an error: {joined:?}");
    assert!(status.await.is_none(), "a cut stream carries no status");
}

#[tokio::test]
async fn killed_container_is_restarted_and_counted() {
    let (client, cluster, _d) = env().await;
    let pods = running_pod(&client, "p", "Always").await;
    let uid = pods.get("p").await.expect("get").metadata.uid.expect("uid");
    assert!(cluster.kubelet().kill_container(&uid, "c"));
    let restarts = || async {
        let p = pods.get("p").await.expect("get");
        let s = &p
            .status
            .and_then(|s| s.container_statuses)
            .unwrap_or_default()[0];
        s.restart_count == 1
            && s.state.as_ref().is_some_and(|st| st.running.is_some())
            && s.last_state
                .as_ref()
                .and_then(|l| l.terminated.as_ref())
                .is_some_and(|t| t.exit_code == 137)
    };
    eventually("restart after kill", restarts).await;
}

#[tokio::test]
async fn dropped_watches_end_their_streams() {
    let (client, cluster, _d) = env().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let mut stream = cms
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch")
        .boxed();
    cluster.faults().drop_watches();
    let next = tokio::time::timeout(WAIT, stream.try_next())
        .await
        .expect("stream ends promptly");
    assert!(next.expect("no error").is_none());
}

#[tokio::test]
async fn delayed_requests_still_answer() {
    let (client, cluster, _d) = env().await;
    cluster
        .faults()
        .delay_next("configmaps", 1, Duration::from_millis(50));
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    assert!(
        cms.list(&Default::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn job_completes_after_its_pods_succeed() {
    let (client, _c, _d) = env().await;
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    jobs.create(&PostParams::default(), &from(json!({"metadata": {"name": "ok"}, "spec": {"completions": 2, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}}}))).await.expect("job");
    let complete = || async {
        let j = jobs.get("ok").await.expect("get");
        j.status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True")
    };
    eventually("job completion", complete).await;
    let job = jobs.get("ok").await.expect("get");
    assert_eq!(job.status.and_then(|s| s.succeeded), Some(2));
}

#[tokio::test]
async fn job_fails_past_its_backoff_limit() {
    let (client, _c, _d) = env().await;
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    jobs.create(&PostParams::default(), &from(json!({"metadata": {"name": "bad"}, "spec": {"backoffLimit": 1, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": ["false"]}]}}}}))).await.expect("job");
    let failed = || async {
        let j = jobs.get("bad").await.expect("get");
        j.status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| {
                c.type_ == "Failed"
                    && c.status == "True"
                    && c.reason.as_deref() == Some("BackoffLimitExceeded")
            })
    };
    eventually("job failure", failed).await;
    assert_eq!(
        jobs.get("bad")
            .await
            .expect("get")
            .status
            .and_then(|s| s.failed),
        Some(2)
    );
}

#[tokio::test]
async fn deleted_namespace_takes_its_content_with_it() {
    let (client, _c, _d) = env().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "gone"}})),
    )
    .await
    .expect("ns");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "gone");
    cms.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "c"}})),
    )
    .await
    .expect("cm");
    nss.delete("gone", &DeleteParams::default())
        .await
        .expect("delete");
    let err = cms
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "d"}})),
        )
        .await;
    if let Err(kube::Error::Api(s)) = err {
        assert_eq!(s.code, 403);
    }
    eventually("namespace removal", || async {
        nss.get_opt("gone").await.expect("get").is_none()
    })
    .await;
    assert!(cms.get_opt("c").await.expect("get").is_none());
}

#[tokio::test]
async fn exec_speaks_the_v4_channel_protocol() {
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let (client, cluster, _d) = env().await;
    running_pod(&client, "p", "Always").await;
    let url = format!(
        "{}/api/v1/namespaces/default/pods/p/exec?command=sh&command=-c&command=echo%20out%3B%20exit%202&stdout=true&stderr=true",
        cluster.url().replace("http://", "ws://")
    );
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v4.channel.k8s.io".parse().expect("header"),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("v4.channel.k8s.io")
    );
    let mut stdout = Vec::new();
    let mut status = None;
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Binary(b) = msg {
            match b.first() {
                Some(1) => stdout.extend_from_slice(&b[1..]),
                Some(3) => {
                    status = Some(
                        serde_json::from_slice::<serde_json::Value>(&b[1..]).expect("status json"),
                    )
                }
                _ => {}
            }
        }
    }
    assert_eq!(stdout, b"out\n");
    let status = status.expect("status on channel 3");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(
        status["details"]["causes"][0],
        json!({"reason": "ExitCode", "message": "2"})
    );
}

#[tokio::test]
async fn exec_readiness_probe_decides_readiness() {
    let (client, _c, _d) = env().await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(&PostParams::default(), &from(json!({"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1000"], "volumeMounts": [{"name": "w", "mountPath": "/work"}],
            "readinessProbe": {"exec": {"command": ["test", "-f", "/work/ready"]}, "periodSeconds": 1}}],
        "volumes": [{"name": "w", "emptyDir": {}}]}}))).await.expect("pod");
    let ready = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    eventually("pod running", || async {
        pods.get("p")
            .await
            .expect("get")
            .status
            .and_then(|s| s.phase)
            .as_deref()
            == Some("Running")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !ready(&pods.get("p").await.expect("get")),
        "ready before the probe passes"
    );
    let mut proc = pods
        .exec("p", ["touch", "/work/ready"], &AttachParams::default())
        .await
        .expect("exec");
    proc.take_status().expect("status").await;
    eventually("readiness", || async {
        ready(&pods.get("p").await.expect("get"))
    })
    .await;
}
