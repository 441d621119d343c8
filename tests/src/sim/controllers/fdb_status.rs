//! The FoundationDB database's own status, as `fdbcli --exec 'status json'` prints it in a
//! process pod (FoundationDB's "Machine-Readable Status"): the stand-in answers that command
//! with a document holding `client.database_status` and `cluster.clients` — `count` and
//! `supported_versions[]`, one entry per client library version with `client_version`,
//! `connected_clients[]` and `max_protocol_clients[]` (`address`, `log_group`), their counts,
//! `protocol_version` and `source_version` — the fields the fdb-kubernetes-operator reads
//! before a version-incompatible upgrade.
//!
//! The clients connected to a cluster are the scenario's: the annotation
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
    for cluster in shared.store.all(&fdb) {
        let bin = bin_dir(shared, meta::namespace(&cluster), meta::name(&cluster));
        let Some(dir) = bin.parent() else { continue };
        let status = dir.join("status.json");
        let text = serde_json::to_string_pretty(&status_document(&cluster)).unwrap_or_default();
        let _ = std::fs::create_dir_all(&bin);
        if std::fs::read_to_string(&status).ok().as_deref() != Some(text.as_str()) {
            let _ = write_atomically(&status, text.as_bytes());
        }
        let fdbcli = bin.join("fdbcli");
        if !fdbcli.exists() {
            let _ = write_atomically(&fdbcli, fdbcli_script(&status).as_bytes());
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&fdbcli, std::fs::Permissions::from_mode(0o755));
        }
    }
}

/// Replaces a file in one rename, so that a reader never sees half of it.
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// The stand-in `fdbcli`: answers `--exec 'status json'` (with an optional `--timeout N` or
/// `-C FILE`) by printing the status document; any other use fails as fdbcli would not help.
fn fdbcli_script(status: &Path) -> String {
    let quoted = format!("'{}'", status.display().to_string().replace('\'', r"'\''"));
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
  exec cat {quoted}
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
pub fn status_document(cluster: &Value) -> Value {
    let clients = clients(cluster);
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
        let doc = status_document(&cluster);
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
        let none = status_document(&json!({}));
        assert_eq!(none["cluster"]["clients"]["count"], 0);
    }
}
