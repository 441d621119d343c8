//! Discovery documents: `/version`, the legacy `/api`, `/apis` and group-version resource lists,
//! and the aggregated `apidiscovery.k8s.io/v2` lists kubectl 1.32 asks for first
//! (KEP-3352 aggregated discovery).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::resources::{ResourceInfo, verbs};

/// The Kubernetes version the simulator claims to be.
pub const GIT_VERSION: &str = "v1.33.0-sim";

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": GIT_VERSION, "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2025-04-23T00:00:00Z", "goVersion": "go1.24.2", "compiler": "gc", "platform": "linux/amd64"
    })
}

fn groups(all: &[ResourceInfo]) -> BTreeMap<String, Vec<String>> {
    let mut g: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in all.iter().filter(|r| !r.group.is_empty()) {
        let vs = g.entry(r.group.clone()).or_default();
        if !vs.contains(&r.version) {
            vs.push(r.version.clone());
        }
    }
    g
}

/// `/api`.
pub fn legacy_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
}

/// `/apis`.
pub fn group_list(all: &[ResourceInfo]) -> Value {
    let items: Vec<Value> = groups(all)
        .into_iter()
        .map(|(name, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
                .collect();
            json!({"name": name, "versions": versions, "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": items})
}

/// `/apis/<group>`.
pub fn group(all: &[ResourceInfo], name: &str) -> Option<Value> {
    let vs = groups(all).remove(name)?;
    let versions: Vec<Value> = vs
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    Some(
        json!({"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": versions, "preferredVersion": versions[0]}),
    )
}

fn subresources(r: &ResourceInfo) -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    let mut s = Vec::new();
    if r.status {
        s.push(("status", "", vec!["get", "patch", "update"]));
    }
    if r.scale {
        s.push(("scale", "Scale", vec!["get", "patch", "update"]));
    }
    if r.kind == "Pod" {
        s.push(("exec", "PodExecOptions", vec!["create", "get"]));
        s.push(("log", "Pod", vec!["get"]));
        s.push(("eviction", "Eviction", vec!["create"]));
        s.push(("binding", "Binding", vec!["create"]));
    }
    s
}

/// `/api/v1` or `/apis/<group>/<version>`; `None` when nothing is served there.
pub fn resource_list(all: &[ResourceInfo], group: &str, version: &str) -> Option<Value> {
    let mine: Vec<&ResourceInfo> = all
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if mine.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in &mine {
        resources.push(json!({
            "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
            "verbs": verbs(), "shortNames": r.short_names, "categories": r.categories,
        }));
        for (sub, kind, vs) in subresources(r) {
            let (g, v, k) = match kind {
                "" => (None, None, r.kind.as_str()),
                "Scale" => (Some("autoscaling"), Some("v1"), "Scale"),
                "Eviction" => (Some("policy"), Some("v1"), "Eviction"),
                other => (None, None, other),
            };
            let mut e = json!({"name": format!("{}/{sub}", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": k, "verbs": vs});
            if let (Some(g), Some(v)) = (g, v) {
                e["group"] = json!(g);
                e["version"] = json!(v);
            }
            resources.push(e);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let subs: Vec<Value> = subresources(r)
        .into_iter()
        .map(|(sub, kind, vs)| {
            let rk = match kind {
                "" => json!({"group": r.group, "version": r.version, "kind": r.kind}),
                "Scale" => json!({"group": "autoscaling", "version": "v1", "kind": "Scale"}),
                "Eviction" => json!({"group": "policy", "version": "v1", "kind": "Eviction"}),
                other => json!({"group": "", "version": "v1", "kind": other}),
            };
            json!({"subresource": sub, "responseKind": rk, "verbs": vs})
        })
        .collect();
    json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": verbs(),
        "shortNames": r.short_names,
        "categories": r.categories,
        "subresources": subs,
    })
}

/// The aggregated discovery document for `/api` (legacy) or `/apis` (named groups).
pub fn aggregated(all: &[ResourceInfo], legacy: bool) -> Value {
    let mut by_group: BTreeMap<String, BTreeMap<String, Vec<Value>>> = BTreeMap::new();
    for r in all.iter().filter(|r| r.group.is_empty() == legacy) {
        by_group
            .entry(r.group.clone())
            .or_default()
            .entry(r.version.clone())
            .or_default()
            .push(aggregated_resource(r));
    }
    let items: Vec<Value> = by_group
        .into_iter()
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .into_iter()
                .map(|(v, rs)| json!({"version": v, "resources": rs, "freshness": "Current"}))
                .collect();
            let mut md = json!({"creationTimestamp": null});
            if !g.is_empty() {
                md["name"] = json!(g);
            }
            json!({"metadata": md, "versions": vs})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: one entry per group version. kubectl reads it to learn that the server does
/// field validation (a PATCH operation with a `fieldValidation` parameter), so it skips
/// client-side schema validation.
pub fn openapi_root(all: &[ResourceInfo]) -> Value {
    let mut paths = serde_json::Map::new();
    let hash = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for r in all {
            r.key().hash(&mut h);
            r.version.hash(&mut h);
        }
        format!("{:016X}", h.finish())
    };
    for r in all {
        let p = gv_path(&r.group, &r.version);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}

/// `/openapi/v3/<gv>`: paths with PATCH operations only, no schemas.
pub fn openapi_gv(all: &[ResourceInfo], gv: &str) -> Option<Value> {
    let mine: Vec<&ResourceInfo> = all
        .iter()
        .filter(|r| gv_path(&r.group, &r.version) == gv)
        .collect();
    if mine.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    for r in mine {
        let scope = if r.namespaced {
            "namespaces/{namespace}/"
        } else {
            ""
        };
        let op = json!({"patch": {
            "operationId": format!("patch{}", r.kind),
            "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
            "x-kubernetes-action": "patch",
            "parameters": [
                {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
            ],
            "responses": {"200": {"description": "OK"}},
        }});
        paths.insert(format!("/{gv}/{scope}{}/{{name}}", r.plural), op);
    }
    Some(
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": GIT_VERSION}, "paths": paths, "components": {"schemas": {}}}),
    )
}
