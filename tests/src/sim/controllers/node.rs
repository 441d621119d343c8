//! The kubelet's pod sync for the one node: mounts volumes (claims' volume directories,
//! emptyDirs, config maps, secrets, hostPaths), resolves env (values, `secretKeyRef`,
//! `configMapKeyRef`, `fieldRef`, `envFrom`), runs the containers, restarts them per
//! `restartPolicy` with a back-off, reports container statuses and conditions, and finishes
//! graceful deletion.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::pod_inputs::{argv_of, env_of, volume_dirs};
use crate::sim::mysql;
use crate::sim::resources::builtin;
use crate::sim::store::Part;
use crate::sim::{NODE, Shared, meta};

fn start_pod(shared: &Shared, pod: &Value) -> bool {
    let uid = meta::uid(pod);
    let dir = shared
        .kubelet
        .pod_dir(meta::namespace(pod), meta::name(pod), uid);
    let Some(vols) = volume_dirs(shared, pod, &dir) else {
        return false;
    };
    let containers: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut envs = Vec::new();
    for c in &containers {
        let Some(env) = env_of(shared, pod, c) else {
            return false;
        };
        envs.push(env);
    }
    let mut mounts: Vec<(PathBuf, String, bool)> = Vec::new();
    let mut mysql_pod = false;
    for (c, env) in containers.iter().zip(&envs) {
        mysql_pod |= argv_of(c, env)
            .get(2)
            .is_some_and(|s| s == mysql::ENTRYPOINT);
        for m in c["volumeMounts"]
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
        {
            let Some(src) = vols.get(m["name"].as_str().unwrap_or_default()) else {
                continue;
            };
            let mut src = src.clone();
            if let Some(sub) = m["subPath"].as_str().filter(|s| !s.is_empty()) {
                src = src.join(sub);
                if !src.exists() {
                    let _ = std::fs::create_dir_all(&src);
                }
            }
            let target = m["mountPath"].as_str().unwrap_or_default().to_string();
            if !target.is_empty() && !mounts.iter().any(|(_, t, _)| *t == target) {
                mounts.push((src, target, m["readOnly"].as_bool().unwrap_or(false)));
            }
        }
    }
    // Without a volume at the data directory, a real container keeps its data in its own
    // writable layer (Kubernetes ignores an image's VOLUME declarations), gone with the pod.
    // Here that layer is a directory of the pod's, never the machine's own /var/lib/mysql.
    if mysql_pod && !mounts.iter().any(|(_, t, _)| t == "/var/lib/mysql") {
        let layer = dir.join("container-layer/var/lib/mysql");
        if std::fs::create_dir_all(&layer).is_ok() {
            mounts.push((layer, "/var/lib/mysql".into(), false));
        }
    }
    let tmpfs: Vec<&str> = if mysql_pod {
        vec!["/run/mysqld"]
    } else {
        vec![]
    };
    if let Err(e) = shared.kubelet.start_sandbox(uid, dir, &mounts, &tmpfs) {
        eprintln!(
            "sim: pod {}/{}: {e:#}",
            meta::namespace(pod),
            meta::name(pod)
        );
        return false;
    }
    for (c, env) in containers.iter().zip(envs) {
        let argv = argv_of(c, &env);
        let wd = c["workingDir"].as_str().unwrap_or("/").to_string();
        let started = shared.kubelet.start_container(
            uid,
            c["name"].as_str().unwrap_or_default(),
            argv,
            env,
            wd,
        );
        let cname = c["name"].as_str().unwrap_or_default();
        match started {
            Ok(()) => super::events::record(
                shared,
                pod,
                false,
                "Started",
                &format!("Started container {cname}"),
                "kubelet",
            ),
            Err(e) => super::events::record(
                shared,
                pod,
                true,
                "Failed",
                &format!("Error: {e:#}"),
                "kubelet",
            ),
        }
    }
    true
}

fn container_ready(shared: &Shared, uid: &str, c: &Value) -> bool {
    let probe = &c["readinessProbe"];
    if let Some(cmd) = probe["exec"]["command"].as_array() {
        let argv: Vec<String> = cmd
            .iter()
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        let secs = |k: &str, d: u64| Duration::from_secs(probe[k].as_u64().unwrap_or(d));
        let name = c["name"].as_str().unwrap_or_default();
        let spec = crate::sim::kubelet::ProbeSpec {
            argv,
            period: secs("periodSeconds", 10),
            timeout: secs("timeoutSeconds", 1),
            initial_delay: secs("initialDelaySeconds", 0),
        };
        return shared.kubelet.readiness(uid, name, &spec);
    }
    let image = c["image"].as_str().unwrap_or_default();
    if c["command"].is_null() && mysql::is_mysql_image(image) && mysql::available() {
        return shared.kubelet.exists_in_pod(uid, "/run/mysqld/mysqld.sock")
            && shared.kubelet.exists_in_pod(uid, "/run/mysqld/mysqld.pid");
    }
    // tcpSocket and httpGet probes pass while the process runs (no per-pod network access).
    true
}

/// One pass over this node's pods.
pub fn sync(shared: &Shared) {
    let pods_ri = builtin("", "pods").expect("built in");
    let pods = shared
        .store
        .select(&pods_ri, |p| p["spec"]["nodeName"] == NODE);
    let live: std::collections::HashSet<&str> = pods.iter().map(meta::uid).collect();
    for uid in shared.kubelet.pod_uids() {
        if !live.contains(uid.as_str()) {
            shared.kubelet.stop_pod(&uid);
        }
    }
    for pod in pods.iter().filter(|p| p["spec"]["nodeName"] == NODE) {
        let uid = meta::uid(pod).to_string();
        let (ns, name) = (meta::namespace(pod), meta::name(pod));
        if meta::deleting(pod) {
            let grace = pod["metadata"]["deletionGracePeriodSeconds"]
                .as_u64()
                .unwrap_or(0);
            if grace == 0 && !shared.kubelet.running(&uid) {
                // Stopped, and held by a finalizer: nothing is left for the kubelet to do.
                continue;
            }
            let asked = shared.kubelet.timer(&uid).unwrap_or_else(|| {
                shared.kubelet.terminate(&uid);
                for c in pod["spec"]["containers"]
                    .as_array()
                    .map(|a| a.as_slice())
                    .unwrap_or_default()
                {
                    let cname = c["name"].as_str().unwrap_or_default();
                    super::events::record(
                        shared,
                        pod,
                        false,
                        "Killing",
                        &format!("Stopping container {cname}"),
                        "kubelet",
                    );
                }
                let now = Instant::now();
                shared.kubelet.set_timer(&uid, Some(now));
                now
            });
            if grace == 0
                || shared.kubelet.all_exited(&uid)
                || asked.elapsed() >= Duration::from_secs(grace.min(10))
            {
                shared.kubelet.stop_pod(&uid);
                shared.kubelet.set_timer(&uid, None);
                shared.store.end_grace(&pods_ri, ns, name);
            }
            continue;
        }
        if super::pod_terminal(pod) && !shared.kubelet.running(&uid) {
            continue;
        }
        if !shared.kubelet.running(&uid) && !start_pod(shared, pod) {
            continue;
        }
        let policy = pod["spec"]["restartPolicy"].as_str().unwrap_or("Always");
        for (cname, code) in shared.kubelet.poll(&uid) {
            let restart = policy == "Always" || (policy == "OnFailure" && code != 0);
            if !restart {
                shared.kubelet.finish(&uid, &cname);
            } else {
                let key = format!("{uid}/{cname}");
                let n = shared
                    .kubelet
                    .status(&uid, &cname, false)
                    .and_then(|s| s["restartCount"].as_u64())
                    .unwrap_or(0);
                shared.kubelet.set_timer(
                    &key,
                    Some(Instant::now() + Duration::from_millis(500 * (1 << n.min(6)))),
                );
            }
        }
        let containers: Vec<Value> = pod["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for c in &containers {
            let cname = c["name"].as_str().unwrap_or_default();
            let key = format!("{uid}/{cname}");
            if shared
                .kubelet
                .timer(&key)
                .is_some_and(|t| Instant::now() >= t)
            {
                shared.kubelet.set_timer(&key, None);
                let _ = shared.kubelet.restart(&uid, cname);
            }
        }
        update_status(shared, pod, &containers);
    }
}

fn update_status(shared: &Shared, pod: &Value, containers: &[Value]) {
    let pods_ri = builtin("", "pods").expect("built in");
    let uid = meta::uid(pod);
    let statuses: Vec<Value> = containers
        .iter()
        .filter_map(|c| {
            let mut s =
                shared
                    .kubelet
                    .status(uid, c["name"].as_str().unwrap_or_default(), false)?;
            let running = s["state"]["running"].is_object();
            s["ready"] = json!(running && container_ready(shared, uid, c));
            s["image"] = c["image"].clone();
            Some(s)
        })
        .collect();
    let all_ready = !statuses.is_empty() && statuses.iter().all(|s| s["ready"] == json!(true));
    let all_done = !statuses.is_empty()
        && statuses
            .iter()
            .all(|s| s["state"]["terminated"].is_object());
    let phase = if all_done {
        if statuses
            .iter()
            .all(|s| s["state"]["terminated"]["exitCode"] == json!(0))
        {
            "Succeeded"
        } else {
            "Failed"
        }
    } else {
        "Running"
    };
    let flag = |b: bool| if b { "True" } else { "False" };
    let started = pod["status"]["startTime"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(meta::now);
    let mut conditions = vec![
        json!({"type": "PodReadyToStartContainers", "status": "True"}),
        json!({"type": "Initialized", "status": "True"}),
        json!({"type": "Ready", "status": flag(all_ready && phase == "Running")}),
        json!({"type": "ContainersReady", "status": flag(all_ready && phase == "Running")}),
        json!({"type": "PodScheduled", "status": "True"}),
    ];
    for c in conditions.iter_mut() {
        let old = pod["status"]["conditions"]
            .as_array()
            .and_then(|cs| {
                cs.iter()
                    .find(|o| o["type"] == c["type"] && o["status"] == c["status"])
            })
            .and_then(|o| o["lastTransitionTime"].as_str().map(String::from));
        c["lastProbeTime"] = Value::Null;
        c["lastTransitionTime"] = json!(old.unwrap_or_else(meta::now));
    }
    let status = json!({
        "phase": phase, "conditions": conditions, "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}], "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": started, "containerStatuses": statuses, "qosClass": "BestEffort",
    });
    let _ = shared.store.modify(
        &pods_ri,
        meta::namespace(pod),
        meta::name(pod),
        Part::Status,
        |p| {
            if p["status"] == status {
                return false;
            }
            p["status"] = status;
            true
        },
    );
}
