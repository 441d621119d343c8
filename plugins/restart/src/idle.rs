//! Waiting for quiet: follow the logs of every container of the pods a selector matches (from
//! now on: `tailLines=0`, so old lines do not count) and return once none has written a line
//! for the idle period. Log timestamps are not needed, so it works the same on every server.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use upgrade_shared::cluster::Cluster;
use upgrade_shared::list::list_matching;

/// The last line seen and when.
#[derive(Debug, Clone)]
struct Last {
    at: Instant,
    line: Option<(String, String)>,
}

/// Waits until the pods matching `selector` log nothing for `idle_for`; fails after `timeout`
/// naming the last line. Returns how many containers were followed.
pub async fn wait_quiet(
    cluster: &Cluster,
    selector: &str,
    idle_for: Duration,
    timeout: Duration,
) -> anyhow::Result<usize> {
    let pods: Vec<Pod> = list_matching(
        cluster.pods(),
        ListParams::default().labels(selector),
        "pods",
        &cluster.namespace,
    )
    .await?;
    let last = Arc::new(Mutex::new(Last {
        at: Instant::now(),
        line: None,
    }));
    let mut tasks = Vec::new();
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            let api = cluster.pods();
            let (pod_name, container) = (name.clone(), c.name.clone());
            let last = last.clone();
            tasks.push(tokio::spawn(async move {
                let params = LogParams {
                    container: Some(container.clone()),
                    follow: true,
                    tail_lines: Some(0),
                    ..LogParams::default()
                };
                let Ok(stream) = api.log_stream(&pod_name, &params).await else {
                    return;
                };
                let mut lines = stream.lines();
                while let Some(Ok(line)) = lines.next().await {
                    let mut l = last.lock().unwrap_or_else(|p| p.into_inner());
                    l.at = Instant::now();
                    l.line = Some((format!("pod/{pod_name} -c {container}"), line));
                }
            }));
        }
    }
    let followed = tasks.len();
    let deadline = Instant::now() + timeout;
    let result = loop {
        let seen = last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if seen.at.elapsed() >= idle_for {
            break Ok(followed);
        }
        if Instant::now() >= deadline {
            let what = seen
                .line
                .map(|(from, line)| format!("; last line from {from}: {line}"))
                .unwrap_or_default();
            break Err(anyhow::anyhow!(
                "the pods matching {selector} in {} did not stay quiet for {}s within {}s{what}",
                cluster.namespace,
                idle_for.as_secs(),
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for t in tasks {
        t.abort();
    }
    result
}
