//! The FoundationDB database's own status, as `fdbcli --exec 'status json'` prints it in a
//! process pod (FoundationDB's "Machine-Readable Status"): the stand-in answers that command
//! with a document holding `client.database_status` and `cluster.clients` — `count` and
//! `supported_versions[]`, one entry per client library version with `client_version`,
//! `connected_clients[]` and `max_protocol_clients[]` (`address`, `log_group`), their counts,
//! `protocol_version` and `source_version` — the fields the fdb-kubernetes-operator reads
//! before a version-incompatible upgrade.
//!
//! The clients connected to a cluster are the scenario's, and the `fdbcli` that asks (a client
//! at its pod's address with its pod's library version, as the real status lists it), and
//! `cluster.processes` has one fdbserver per process pod at the pod's IP. The scenario's: the
//! annotation
//! `sim.kubectl-upgrade.dev/fdb-clients` on the FoundationDBCluster holds a JSON list of
//! `{"address": "10.1.2.3:4500", "versions": ["7.1.33", "7.3.43"], "logGroup": "app"}` (a
//! multi-version client lists every library it loaded; its highest is its max protocol). Without
//! the annotation no client is connected. The document is rewritten on every pass, so a test
//! that changes the annotation sees the new clients at the next `status json`.
//!
//! `fdbcli` itself is a script in a directory of the sim's data dir that the kubelet stand-in
//! puts first on the PATH of FoundationDB's main container; exec runs it for real in the pod.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::sim::{Shared, meta};

/// The annotation listing the clients connected to a cluster.
pub const CLIENTS_ANNOTATION: &str = "sim.kubectl-upgrade.dev/fdb-clients";

/// The directory holding the `fdbcli` of a cluster's process pods.
pub fn bin_dir(shared: &Shared, namespace: &str, cluster: &str) -> PathBuf {
    shared
        .data_dir
        .join("fdb-status")
        .join(namespace)
        .join(cluster)
        .join("bin")
}

/// Writes each cluster's status document and its `fdbcli`.
pub fn sync(shared: &Shared) {
    let Some(fdb) = shared
        .store
        .resolve_kind("apps.foundationdb.org/v1beta2", "FoundationDBCluster")
    else {
        return;
    };
    let pods_ri = crate::sim::resources::builtin("", "pods").expect("built in");
    for cluster in shared.store.all(&fdb) {
        let (ns, name) = (meta::namespace(&cluster), meta::name(&cluster));
        let bin = bin_dir(shared, ns, name);
        let Some(dir) = bin.parent() else { continue };
        let pods = shared.store.select(&pods_ri, |p| {
            meta::namespace(p) == ns
                && p["metadata"]["labels"]["foundationdb.org/fdb-cluster-name"] == name
        });
        let processes = processes(&pods);
        let _ = std::fs::create_dir_all(&bin);
        // One document per process pod: the `fdbcli` run in it is itself a client of the
        // database, at the pod's address and with the pod's library, as the real status lists it.
        for pod in &pods {
            let status = dir.join(format!("status-{}.json", meta::name(pod)));
            let doc = status_document(&cluster, &processes, fdbcli_client(pod).as_ref());
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            if std::fs::read_to_string(&status).ok().as_deref() != Some(text.as_str()) {
                let _ = write_atomically(&status, text.as_bytes());
            }
        }
        let fdbcli = bin.join("fdbcli");
        let script = fdbcli_script(dir);
        if std::fs::read_to_string(&fdbcli).ok().as_deref() != Some(script.as_str()) {
            let _ = write_atomically(&fdbcli, script.as_bytes());
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&fdbcli, std::fs::Permissions::from_mode(0o755));
        }
    }
}

/// The image tag of a pod's `foundationdb` container (its fdbserver's and fdbcli's version).
fn pod_version(pod: &Value) -> Option<String> {
    pod["spec"]["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "foundationdb")?["image"]
        .as_str()?
        .rsplit_once(':')
        .map(|(_, t)| t.to_string())
}

/// `cluster.processes`: one fdbserver per process pod, keyed by its process group, at the
/// pod's IP and the default port 4501.
fn processes(pods: &[Value]) -> Value {
    let mut out = serde_json::Map::new();
    for pod in pods {
        let Some(ip) = pod["status"]["podIP"].as_str() else {
            continue;
        };
        let id = pod["metadata"]["labels"]["foundationdb.org/fdb-process-group-id"]
            .as_str()
            .unwrap_or(meta::name(pod));
        out.insert(
            id.to_string(),
            json!({
                "address": format!("{ip}:4501"),
                "class_type": pod["metadata"]["labels"]["foundationdb.org/fdb-process-class"],
                "version": pod_version(pod),
                "locality": {"instance_id": id},
            }),
        );
    }
    Value::Object(out)
}

/// The client an `fdbcli` run in the pod is: the pod's IP with an ephemeral port, the pod's
/// library version, the default log group.
fn fdbcli_client(pod: &Value) -> Option<Client> {
    Some(Client {
        address: format!("{}:53210", pod["status"]["podIP"].as_str()?),
        log_group: "default".into(),
        versions: vec![pod_version(pod)?],
    })
}

/// Replaces a file in one rename, so that a reader never sees half of it.
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// The stand-in `fdbcli`: answers `--exec 'status json'` (with an optional `--timeout N` or
/// `-C FILE`) by printing the status document; any other use fails as fdbcli would not help.
fn fdbcli_script(dir: &Path) -> String {
    let quoted = format!("'{}'", dir.display().to_string().replace('\'', r"'\''"));
    format!(
        r#"#!/bin/sh
exec_cmd=""
while [ $# -gt 0 ]; do
  case "$1" in
    --exec) exec_cmd="$2"; shift 2 ;;
    --timeout|-C|--cluster-file) shift 2 ;;
    *) echo "fdbcli: unsupported argument $1" >&2; exit 1 ;;
  esac
done
if [ "$exec_cmd" = "status json" ]; then
  exec cat {quoted}/"status-$HOSTNAME.json"
fi
echo "fdbcli: this stand-in answers only --exec 'status json'" >&2
exit 1
"#
    )
}

/// One connected client as the scenario lists it.
struct Client {
    address: String,
    log_group: String,
    versions: Vec<String>,
}

fn clients(cluster: &Value) -> Vec<Client> {
    let Some(text) = cluster["metadata"]["annotations"][CLIENTS_ANNOTATION].as_str() else {
        return Vec::new();
    };
    let list: Vec<Value> = serde_json::from_str(text).unwrap_or_default();
    list.iter()
        .map(|c| Client {
            address: c["address"].as_str().unwrap_or_default().to_string(),
            log_group: c["logGroup"].as_str().unwrap_or("default").to_string(),
            versions: c["versions"]
                .as_array()
                .map(|vs| {
                    vs.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// Numbers of a version for ordering (`7.1.33` → [7, 1, 33]).
fn numbers(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// The protocol version FoundationDB reports for a release line (`7.1.33` → `fdb00b071010000`,
/// the form status json prints: the line's major and minor after `fdb00b0`).
fn protocol_of(version: &str) -> String {
    let n = numbers(version);
    format!(
        "fdb00b0{}{}010000",
        n.first().copied().unwrap_or(0),
        n.get(1).copied().unwrap_or(0)
    )
}

/// The document `status json` prints for a cluster.
fn status_document(cluster: &Value, processes: &Value, fdbcli: Option<&Client>) -> Value {
    let mut clients = clients(cluster);
    clients.extend(fdbcli.map(|c| Client {
        address: c.address.clone(),
        log_group: c.log_group.clone(),
        versions: c.versions.clone(),
    }));
    let mut versions: Vec<String> = clients
        .iter()
        .flat_map(|c| c.versions.iter().cloned())
        .collect();
    versions.sort_by_key(|v| numbers(v));
    versions.dedup();
    let entry = |c: &Client| json!({"address": c.address, "log_group": c.log_group});
    let supported: Vec<Value> = versions
        .iter()
        .map(|v| {
            let connected: Vec<Value> = clients
                .iter()
                .filter(|c| c.versions.contains(v))
                .map(entry)
                .collect();
            let max: Vec<Value> = clients
                .iter()
                .filter(|c| c.versions.iter().max_by_key(|x| numbers(x)) == Some(v))
                .map(entry)
                .collect();
            json!({
                "client_version": v,
                "connected_clients": connected,
                "count": connected.len(),
                "max_protocol_clients": max,
                "max_protocol_count": max.len(),
                "protocol_version": protocol_of(v),
                "source_version": "",
            })
        })
        .collect();
    let available = cluster["status"]["health"]["available"]
        .as_bool()
        .unwrap_or(true);
    json!({
        "client": {
            "database_status": {"available": available, "healthy": available},
            "messages": [],
        },
        "cluster": {
            "clients": {"count": clients.len(), "supported_versions": supported},
            "connection_string": cluster["status"]["connectionString"],
            "processes": processes,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_grouped_by_the_library_versions_they_support() {
        let cluster = json!({"metadata": {"annotations": {CLIENTS_ANNOTATION: r#"[
            {"address": "10.1.2.3:4500", "versions": ["7.1.33"]},
            {"address": "10.1.2.4:4500", "versions": ["7.1.33", "7.3.43"], "logGroup": "app"}
        ]"#}}});
        let doc = status_document(&cluster, &json!({}), None);
        let clients = &doc["cluster"]["clients"];
        assert_eq!(clients["count"], 2);
        let v = clients["supported_versions"].as_array().unwrap();
        assert_eq!(v[0]["client_version"], "7.1.33");
        assert_eq!(v[0]["count"], 2);
        assert_eq!(v[0]["max_protocol_count"], 1);
        assert_eq!(v[0]["protocol_version"], "fdb00b071010000");
        assert_eq!(v[1]["client_version"], "7.3.43");
        assert_eq!(v[1]["connected_clients"][0]["address"], "10.1.2.4:4500");
        assert_eq!(v[1]["connected_clients"][0]["log_group"], "app");
        let none = status_document(&json!({}), &json!({}), None);
        assert_eq!(none["cluster"]["clients"]["count"], 0);
    }
}
