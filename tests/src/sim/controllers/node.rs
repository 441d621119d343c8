//! The kubelet's pod sync for the one node: mounts volumes (claims' volume directories,
//! emptyDirs, config maps, secrets, hostPaths), resolves env (values, `secretKeyRef`,
//! `configMapKeyRef`, `fieldRef`, `envFrom`), runs the containers, restarts them per
//! `restartPolicy` with a back-off, reports container statuses and conditions, and finishes
//! graceful deletion.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use super::volumes::volume_path;
use crate::sim::mysql;
use crate::sim::resources::builtin;
use crate::sim::store::Part;
use crate::sim::{NODE, Shared, meta};

/// When terminating pods were asked to stop, and when each crashed container may restart.
static TIMERS: Mutex<Option<HashMap<String, Instant>>> = Mutex::new(None);

fn timer(key: &str) -> Option<Instant> {
    TIMERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashMap::new)
        .get(key)
        .copied()
}

fn set_timer(key: &str, at: Option<Instant>) {
    let mut t = TIMERS.lock().unwrap_or_else(|p| p.into_inner());
    let m = t.get_or_insert_with(HashMap::new);
    match at {
        Some(i) => {
            m.insert(key.to_string(), i);
        }
        None => {
            m.remove(key);
        }
    }
}

fn decode_secret(v: &Value) -> String {
    v.as_str()
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn lookup(shared: &Shared, kind: &str, ns: &str, name: &str) -> Option<Value> {
    let ri = builtin("", kind).expect("built in");
    shared.store.get(&ri, ns, name).ok()
}

/// Key/value pairs of a config map or secret (secrets decoded).
fn data_of(obj: &Value, secret: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(m) = obj["data"].as_object() {
        for (k, v) in m {
            out.push((
                k.clone(),
                if secret {
                    decode_secret(v)
                } else {
                    v.as_str().unwrap_or_default().to_string()
                },
            ));
        }
    }
    if let Some(m) = obj["stringData"].as_object() {
        for (k, v) in m {
            out.push((k.clone(), v.as_str().unwrap_or_default().to_string()));
        }
    }
    out
}

fn env_of(shared: &Shared, pod: &Value, c: &Value) -> Option<Vec<(String, String)>> {
    let ns = meta::namespace(pod);
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOSTNAME".into(), meta::name(pod).into()),
        ("HOME".into(), "/root".into()),
    ];
    let mut set = |k: String, v: String| {
        env.retain(|(ek, _)| *ek != k);
        env.push((k, v));
    };
    for from in c["envFrom"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
    {
        let prefix = from["prefix"].as_str().unwrap_or_default();
        let (kind, r) = if from["secretRef"].is_object() {
            ("secrets", &from["secretRef"])
        } else {
            ("configmaps", &from["configMapRef"])
        };
        match lookup(shared, kind, ns, r["name"].as_str().unwrap_or_default()) {
            Some(o) => data_of(&o, kind == "secrets")
                .into_iter()
                .for_each(|(k, v)| set(format!("{prefix}{k}"), v)),
            None if r["optional"].as_bool() == Some(true) => {}
            None => return None,
        }
    }
    let mut resolved: Vec<(String, String)> = Vec::new();
    for e in c["env"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
    {
        let name = e["name"].as_str().unwrap_or_default().to_string();
        let vf = &e["valueFrom"];
        let value = if vf.is_object() {
            let (kind, r) = if vf["secretKeyRef"].is_object() {
                ("secrets", &vf["secretKeyRef"])
            } else {
                ("configmaps", &vf["configMapKeyRef"])
            };
            if vf["fieldRef"].is_object() {
                let path = vf["fieldRef"]["fieldPath"].as_str().unwrap_or_default();
                Some(match path {
                    "metadata.name" => meta::name(pod).to_string(),
                    "metadata.namespace" => ns.to_string(),
                    "metadata.uid" => meta::uid(pod).to_string(),
                    "spec.nodeName" => NODE.to_string(),
                    "status.podIP" | "status.hostIP" => "127.0.0.1".to_string(),
                    "spec.serviceAccountName" => pod["spec"]["serviceAccountName"]
                        .as_str()
                        .unwrap_or("default")
                        .to_string(),
                    _ => String::new(),
                })
            } else if vf["resourceFieldRef"].is_object() {
                Some("0".into())
            } else {
                let obj = lookup(shared, kind, ns, r["name"].as_str().unwrap_or_default());
                let key = r["key"].as_str().unwrap_or_default();
                match obj.and_then(|o| {
                    data_of(&o, kind == "secrets")
                        .into_iter()
                        .find(|(k, _)| k == key)
                }) {
                    Some((_, v)) => Some(v),
                    None if r["optional"].as_bool() == Some(true) => None,
                    None => return None,
                }
            }
        } else {
            // `$(VAR)` expands variables defined earlier (third_party/forked/golang/expansion).
            let mut v = e["value"].as_str().unwrap_or_default().to_string();
            for (k, val) in &resolved {
                v = v.replace(&format!("$({k})"), val);
            }
            Some(v)
        };
        if let Some(v) = value {
            resolved.push((name.clone(), v.clone()));
            set(name, v);
        }
    }
    Some(env)
}

fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = s.to_string();
    for (k, v) in env {
        out = out.replace(&format!("$({k})"), v);
    }
    out
}

/// The argv of a container: its command and args, or the image's default.
pub fn argv_of(c: &Value, env: &[(String, String)]) -> Vec<String> {
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .map(|x| expand(x, env))
                    .collect()
            })
            .unwrap_or_default()
    };
    let command = list(&c["command"]);
    if !command.is_empty() {
        let mut argv = command;
        argv.extend(list(&c["args"]));
        return argv;
    }
    if mysql::is_mysql_image(c["image"].as_str().unwrap_or_default()) && mysql::available() {
        return vec!["sh".into(), "-c".into(), mysql::ENTRYPOINT.into()];
    }
    vec!["sleep".into(), "infinity".into()]
}

/// Host paths of the pod's volumes, or `None` while one is not ready (unbound claim, missing
/// config map or secret).
fn volume_dirs(
    shared: &Shared,
    pod: &Value,
    dir: &std::path::Path,
) -> Option<HashMap<String, PathBuf>> {
    let ns = meta::namespace(pod);
    let mut out = HashMap::new();
    for v in pod["spec"]["volumes"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
    {
        let name = v["name"].as_str().unwrap_or_default().to_string();
        let local = dir.join("volumes").join(&name);
        let path = if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
            let c = lookup(shared, "persistentvolumeclaims", ns, claim)?;
            if c["status"]["phase"] != "Bound" {
                return None;
            }
            let pv = lookup(
                shared,
                "persistentvolumes",
                "",
                c["spec"]["volumeName"].as_str()?,
            )?;
            let p = volume_path(&shared.data_dir, &pv)?;
            std::fs::create_dir_all(&p).ok()?;
            p
        } else if let Some(p) = v["hostPath"]["path"].as_str() {
            if matches!(
                v["hostPath"]["type"].as_str(),
                Some("DirectoryOrCreate") | None | Some("")
            ) {
                let _ = std::fs::create_dir_all(p);
            }
            PathBuf::from(p)
        } else if v["configMap"].is_object() || v["secret"].is_object() {
            let secret = v["secret"].is_object();
            let src = if secret {
                &v["secret"]
            } else {
                &v["configMap"]
            };
            let obj_name = if secret {
                src["secretName"].as_str()
            } else {
                src["name"].as_str()
            }
            .unwrap_or_default();
            let data = match lookup(
                shared,
                if secret { "secrets" } else { "configmaps" },
                ns,
                obj_name,
            ) {
                Some(o) => data_of(&o, secret),
                None if src["optional"].as_bool() == Some(true) => vec![],
                None => return None,
            };
            std::fs::create_dir_all(&local).ok()?;
            let items = src["items"].as_array().cloned().unwrap_or_default();
            for (k, val) in data {
                let target = if items.is_empty() {
                    Some(k.clone())
                } else {
                    items
                        .iter()
                        .find(|i| i["key"] == json!(k))
                        .and_then(|i| i["path"].as_str().map(String::from))
                };
                if let Some(t) = target {
                    let p = local.join(t);
                    if let Some(parent) = p.parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                    let _ = std::fs::write(p, val);
                }
            }
            local
        } else {
            let _ = std::fs::create_dir_all(&local);
            local
        };
        out.insert(name, path);
    }
    Some(out)
}

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
        let _ = shared.kubelet.start_container(
            uid,
            c["name"].as_str().unwrap_or_default(),
            argv,
            env,
            wd,
        );
    }
    true
}

fn container_ready(shared: &Shared, uid: &str, c: &Value) -> bool {
    let image = c["image"].as_str().unwrap_or_default();
    if c["command"].is_null() && mysql::is_mysql_image(image) && mysql::available() {
        return shared.kubelet.exists_in_pod(uid, "/run/mysqld/mysqld.sock")
            && shared.kubelet.exists_in_pod(uid, "/run/mysqld/mysqld.pid");
    }
    true
}

/// One pass over this node's pods.
pub fn sync(shared: &Shared) {
    let pods_ri = builtin("", "pods").expect("built in");
    let pods = shared.store.all(&pods_ri);
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
            let asked = timer(&uid).unwrap_or_else(|| {
                shared.kubelet.terminate(&uid);
                let now = Instant::now();
                set_timer(&uid, Some(now));
                now
            });
            if grace == 0
                || shared.kubelet.all_exited(&uid)
                || asked.elapsed() >= Duration::from_secs(grace.min(10))
            {
                shared.kubelet.stop_pod(&uid);
                set_timer(&uid, None);
                shared.store.remove(&pods_ri, ns, name);
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
                set_timer(
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
            if timer(&key).is_some_and(|t| Instant::now() >= t) {
                set_timer(&key, None);
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
