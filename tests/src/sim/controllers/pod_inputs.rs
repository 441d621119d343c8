//! What a pod's containers are started with: env (values, `secretKeyRef`, `configMapKeyRef`,
//! `fieldRef`, `envFrom`, `$(VAR)` expansion), argv (command and args, or the image's default)
//! and the host directories of its volumes.

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine;
use serde_json::{Value, json};

use super::volumes::volume_path;
use crate::sim::mysql;
use crate::sim::resources::builtin;
use crate::sim::{NODE, Shared, meta};

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

pub fn env_of(shared: &Shared, pod: &Value, c: &Value) -> Option<Vec<(String, String)>> {
    let ns = meta::namespace(pod);
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOSTNAME".into(), meta::name(pod).into()),
        ("HOME".into(), "/root".into()),
    ];
    // FoundationDB's image carries fdbcli; the stand-in's answers the cluster's status.
    if is_fdb_image(c["image"].as_str().unwrap_or_default())
        && let Some(cluster) =
            pod["metadata"]["labels"]["foundationdb.org/fdb-cluster-name"].as_str()
    {
        let bin = super::fdb_status::bin_dir(shared, ns, cluster);
        env[0].1 = format!("{}:{}", bin.display(), env[0].1);
    }
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

/// FoundationDB's main image (not its sidecar).
pub fn is_fdb_image(image: &str) -> bool {
    let repo = image.rsplit_once(':').map_or(image, |(r, _)| r);
    repo == "foundationdb/foundationdb" || repo.ends_with("/foundationdb/foundationdb")
}

/// The FoundationDB image's entrypoint as the stand-in runs it: like `fdbmonitor`, a loop that
/// starts a process named `fdbserver` and starts it again whenever it exits, so
/// `pkill fdbserver` restarts the server without restarting the container.
const FDB_MONITOR: &str = r#"bin=/tmp/kubectl-upgrade-sim-fdb
[ -x "$bin/fdbserver" ] || { mkdir -p "$bin"; ln -s "$(command -v sleep)" "$bin/fdbserver.$$" && mv -f "$bin/fdbserver.$$" "$bin/fdbserver"; }
while true; do
  echo "fdbmonitor: starting fdbserver"
  "$bin/fdbserver" infinity
  echo "fdbmonitor: fdbserver exited with status $?, restarting"
  sleep 0.1
done"#;

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
    if is_fdb_image(c["image"].as_str().unwrap_or_default()) {
        return vec!["sh".into(), "-c".into(), FDB_MONITOR.into()];
    }
    vec!["sleep".into(), "infinity".into()]
}

/// Host paths of the pod's volumes, or `None` while one is not ready (unbound claim, missing
/// config map or secret).
pub fn volume_dirs(
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
