//! Scenario files: YAML documents of ordinary Kubernetes objects to seed, plus
//! `sim.kubectl-upgrade.dev/v1` `VolumeContents` documents that fill volumes with files. See
//! tests/README.md for the format.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::controllers::volumes::{self, volume_path};
use super::resources::{ResourceInfo, builtin};
use super::store::Part;
use super::{Shared, meta};

/// apiVersion of the simulator's own scenario documents.
pub const SIM_API_VERSION: &str = "sim.kubectl-upgrade.dev/v1";

/// Kinds that controllers recreate, or that only make sense on the cluster they came from.
fn skipped(obj: &Value) -> bool {
    let kind = obj["kind"].as_str().unwrap_or_default();
    let controlled = meta::owner_refs(obj).iter().any(|r| {
        matches!(
            r["kind"].as_str(),
            Some("ReplicaSet" | "StatefulSet" | "Job" | "Deployment" | "DaemonSet")
        )
    });
    controlled
        || matches!(
            kind,
            "Event" | "Endpoints" | "EndpointSlice" | "ControllerRevision" | "Lease"
        )
}

fn order(obj: &Value) -> u8 {
    match obj["kind"].as_str().unwrap_or_default() {
        "Namespace" => 0,
        "CustomResourceDefinition" | "StorageClass" => 1,
        "ConfigMap" | "Secret" | "ServiceAccount" => 2,
        "PersistentVolume" => 3,
        "PersistentVolumeClaim" => 4,
        "VolumeContents" => 6,
        _ => 5,
    }
}

/// Strips what the server assigns, so objects copied from a real cluster load cleanly.
fn clean(mut obj: Value) -> Value {
    if let Some(m) = obj["metadata"].as_object_mut() {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
            "selfLink",
            "deletionTimestamp",
            "ownerReferences",
        ] {
            m.remove(k);
        }
    }
    // Looked up without indexing: `obj["spec"]["claimRef"]` on a mutable value would insert
    // both keys (as null) into objects that have neither.
    if let Some(c) = obj
        .pointer_mut("/spec/claimRef")
        .and_then(|c| c.as_object_mut())
    {
        c.remove("uid");
        c.remove("resourceVersion");
    }
    obj
}

fn ensure_namespace(shared: &Shared, ns: &str) {
    let ri = builtin("", "namespaces").expect("built in");
    if shared.store.get(&ri, "", ns).is_err() {
        let _ = shared
            .store
            .create(&ri, "", json!({"metadata": {"name": ns}}), false);
    }
}

fn resource_of(shared: &Shared, obj: &Value) -> anyhow::Result<ResourceInfo> {
    let (av, kind) = (
        obj["apiVersion"].as_str().unwrap_or_default(),
        obj["kind"].as_str().unwrap_or_default(),
    );
    shared.store.resolve_kind(av, kind).with_context(|| format!("kind {kind} of apiVersion {av} is not served (define its CustomResourceDefinition first)"))
}

/// Parses every document of a scenario file.
pub fn parse(text: &str) -> anyhow::Result<Vec<Value>> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).context("parsing YAML")?;
    let mut out = Vec::new();
    for d in docs.into_iter().filter(|d| d.is_object()) {
        if d["kind"] == "List" {
            out.extend(d["items"].as_array().cloned().unwrap_or_default());
        } else {
            out.push(d);
        }
    }
    Ok(out)
}

/// Loads a scenario file into the cluster.
pub fn load(shared: &Shared, path: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut docs = parse(&text)?;
    docs.retain(|d| !skipped(d));
    docs.sort_by_key(order);
    let mut contents = Vec::new();
    for doc in docs {
        if doc["apiVersion"] == SIM_API_VERSION {
            match doc["kind"].as_str() {
                Some("VolumeContents") => contents.push(doc),
                other => bail!("unknown simulator kind {other:?}"),
            }
            continue;
        }
        let doc = clean(doc);
        let ri = resource_of(shared, &doc)?;
        let ns = if ri.namespaced {
            meta::namespace(&doc).to_string()
        } else {
            String::new()
        };
        let ns = if ri.namespaced && ns.is_empty() {
            "default".to_string()
        } else {
            ns
        };
        if ri.namespaced {
            ensure_namespace(shared, &ns);
        }
        if ri.kind == "Namespace" && shared.store.get(&ri, "", meta::name(&doc)).is_ok() {
            continue;
        }
        let status = doc.get("status").cloned();
        let created = shared
            .store
            .create(&ri, &ns, doc, false)
            .map_err(|e| anyhow::anyhow!(e.message))?;
        let custom = builtin(&ri.group, &ri.plural).is_none();
        if let Some(status) = status.filter(|_| custom && ri.status) {
            shared
                .store
                .modify(&ri, &ns, meta::name(&created), Part::Status, |o| {
                    o["status"] = status;
                    true
                })
                .map_err(|e| anyhow::anyhow!(e.message))?;
        }
    }
    // Bind and provision now, so volume contents can name claims.
    volumes::sync(shared);
    volumes::sync(shared);
    for doc in contents {
        fill(shared, &doc, path.parent().unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

fn target_dir(shared: &Shared, doc: &Value) -> anyhow::Result<PathBuf> {
    let pv_ri = builtin("", "persistentvolumes").expect("built in");
    let pv_name = match doc["spec"]["claim"]["name"].as_str() {
        Some(claim) => {
            let ns = doc["spec"]["claim"]["namespace"]
                .as_str()
                .unwrap_or("default");
            let c = shared
                .store
                .get(
                    &builtin("", "persistentvolumeclaims").expect("built in"),
                    ns,
                    claim,
                )
                .map_err(|e| anyhow::anyhow!(e.message))?;
            c["spec"]["volumeName"]
                .as_str()
                .filter(|v| !v.is_empty())
                .with_context(|| format!("claim {ns}/{claim} is not bound"))?
                .to_string()
        }
        None => meta::name(doc).to_string(),
    };
    let pv = shared
        .store
        .get(&pv_ri, "", &pv_name)
        .map_err(|e| anyhow::anyhow!(e.message))?;
    volume_path(&shared.data_dir, &pv)
        .with_context(|| format!("volume {pv_name} has no hostPath or local path"))
}

fn mode_of(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().map(|m| m as u32),
        Value::String(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8).ok(),
        _ => None,
    }
}

fn fill(shared: &Shared, doc: &Value, base: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = target_dir(shared, doc)?;
    std::fs::create_dir_all(&dir)?;
    for f in doc["spec"]["files"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
    {
        let rel = f["path"]
            .as_str()
            .context("file without path")?
            .trim_start_matches('/');
        if rel.split('/').any(|p| p == "..") {
            bail!("file path {rel} leaves the volume");
        }
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, f["content"].as_str().unwrap_or_default())?;
        if let Some(m) = mode_of(&f["mode"]) {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m))?;
        }
    }
    if doc["spec"]["mariadbDataDir"].as_bool() == Some(true) {
        let mut sql = String::new();
        // One file, or a list run in order (a fixture, then the schema scripts that bring it
        // to a later version).
        let files: Vec<&str> = match &doc["spec"]["initSqlFile"] {
            Value::String(f) => vec![f.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for file in files {
            let p = base.join(file);
            sql.push_str(
                &std::fs::read_to_string(&p)
                    .with_context(|| format!("reading initSqlFile {}", p.display()))?,
            );
            sql.push('\n');
        }
        sql.push_str(doc["spec"]["initSql"].as_str().unwrap_or_default());
        if !sql.trim().is_empty() {
            std::fs::write(dir.join(".sim-init.sql"), sql)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_multi_document_files_and_lists() {
        let docs = parse("a: 1\nkind: X\n---\nkind: List\nitems:\n- kind: Y\n- kind: Z\n---\n")
            .expect("parse");
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[2]["kind"], "Z");
    }

    #[test]
    fn octal_modes() {
        assert_eq!(mode_of(&json!("0644")), Some(0o644));
        assert_eq!(mode_of(&json!(420)), Some(420));
    }
}
