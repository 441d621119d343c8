//! Pod subresources: `log` (from the container's log file, optionally followed), `eviction`
//! (honouring PodDisruptionBudgets, pkg/registry/core/pod/storage/eviction.go) and `binding`.

use std::time::Duration;

use bytes::Bytes;
use hyper::Response;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::errors::ApiError;
use super::http::{Body, Target, error_response, respond, stream_response};
use super::resources::builtin;
use super::selectors::LabelSelector;
use super::store::{DeleteOptions, Part};
use super::{Shared, meta};

fn pods() -> super::resources::ResourceInfo {
    builtin("", "pods").expect("pods is built in")
}

/// Picks the container a request means, as the apiserver does for logs and exec.
pub fn container_name(pod: &Value, asked: Option<&str>) -> Result<String, ApiError> {
    let names: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let init: Vec<String> = pod["spec"]["initContainers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let pod_name = meta::name(pod);
    match asked.filter(|a| !a.is_empty()) {
        Some(a) if names.iter().chain(init.iter()).any(|n| n == a) => Ok(a.to_string()),
        Some(a) => Err(ApiError::bad_request(format!(
            "container {a} is not valid for pod {pod_name}"
        ))),
        None if names.len() == 1 => Ok(names[0].clone()),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            names.join(" ")
        ))),
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    lines[lines.len().saturating_sub(n)..].concat()
}

/// `GET pods/<name>/log`.
pub async fn log_response(shared: &Shared, t: &Target) -> Response<Body> {
    let name = t.name.clone().unwrap_or_default();
    let pod = match shared.store.get(&pods(), &t.namespace, &name) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let container = match container_name(&pod, t.query.get("container").map(String::as_str)) {
        Ok(c) => c,
        Err(e) => return error_response(&e),
    };
    let uid = meta::uid(&pod).to_string();
    let mut path = shared
        .kubelet
        .log_path(&t.namespace, &name, &uid, &container);
    if t.query.get("previous").is_some_and(|p| p == "true") {
        path = path.with_file_name(format!("{container}.previous.log"));
        if !path.exists() {
            return error_response(&ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
    }
    let Ok(text) = tokio::fs::read_to_string(&path).await else {
        return error_response(&ApiError::bad_request(format!(
            "container {container:?} in pod {name:?} is waiting to start: ContainerCreating"
        )));
    };
    let text = match t.query.get("tailLines").and_then(|n| n.parse().ok()) {
        Some(n) => tail(&text, n),
        None => text,
    };
    if t.query.get("follow").is_none_or(|f| f != "true") {
        return respond(200, "text/plain", Bytes::from(text));
    }
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let _ = tx.send(Bytes::from(text)).await;
    let mut offset = tokio::fs::metadata(&path)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    // Following ends when the container's process does (kubelet's log follow stops at exit).
    let pid = shared.kubelet.container_pid(&uid, &container);
    let alive = move || {
        pid.is_some_and(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|st| {
                st.rsplit_once(')')
                    .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
            })
        })
    };
    tokio::spawn(async move {
        loop {
            let running = alive();
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            let Ok(mut f) = tokio::fs::File::open(&path).await else {
                return;
            };
            if f.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
                return;
            }
            let mut buf = Vec::new();
            if f.read_to_end(&mut buf).await.is_err() {
                return;
            }
            if !buf.is_empty() {
                offset += buf.len() as u64;
                if tx.send(Bytes::from(buf)).await.is_err() {
                    return;
                }
            }
            if !running {
                return;
            }
        }
    });
    stream_response("text/plain", rx)
}

fn pdb_for<'a>(pdbs: &'a [Value], pod: &Value) -> Vec<&'a Value> {
    pdbs.iter()
        .filter(|p| meta::namespace(p) == meta::namespace(pod))
        .filter(|p| {
            LabelSelector::from_object(&p["spec"]["selector"])
                .is_some_and(|s| !s.is_empty() && s.matches(&pod["metadata"]["labels"]))
        })
        .collect()
}

/// `POST pods/<name>/eviction`: 429 when a matching budget allows no disruption.
pub fn evict(shared: &Shared, ns: &str, name: &str, dry_run: bool) -> Result<(), ApiError> {
    let pod = shared.store.get(&pods(), ns, name)?;
    let pdb_ri = builtin("policy", "poddisruptionbudgets").expect("pdb is built in");
    let pdbs = shared.store.all(&pdb_ri);
    let matching = pdb_for(&pdbs, &pod);
    if matching.len() > 1 {
        return Err(ApiError::custom(
            500,
            "InternalError",
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            Value::Null,
        ));
    }
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    let terminal = matches!(phase, "Succeeded" | "Failed" | "Pending");
    if let Some(pdb) = matching.first()
        && !terminal
    {
        let allowed = pdb["status"]["disruptionsAllowed"].as_i64().unwrap_or(0);
        if allowed <= 0 {
            let st = &pdb["status"];
            return Err(ApiError::custom(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
                json!({"causes": [{"reason": "DisruptionBudget", "message": format!("The disruption budget {} needs {} healthy pods and has {} currently", meta::name(pdb), st["desiredHealthy"].as_i64().unwrap_or(0), st["currentHealthy"].as_i64().unwrap_or(0))}]}),
            ));
        }
        if !dry_run {
            let pod_name = name.to_string();
            shared
                .store
                .modify(&pdb_ri, ns, meta::name(pdb), Part::Status, |p| {
                    p["status"]["disruptionsAllowed"] = json!(allowed - 1);
                    p["status"]["disruptedPods"][&pod_name] = json!(meta::now());
                    true
                })?;
        }
    }
    shared.store.delete(
        &pods(),
        ns,
        name,
        &DeleteOptions {
            dry_run,
            ..Default::default()
        },
    )?;
    Ok(())
}

/// `POST pods/<name>/binding`: sets the node.
pub fn bind(shared: &Shared, ns: &str, name: &str, binding: &Value) -> Result<(), ApiError> {
    let node = binding["target"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    shared.store.modify(&pods(), ns, name, Part::Main, |p| {
        p["spec"]["nodeName"] = json!(node);
        true
    })?;
    Ok(())
}
