//! Verbs on resources and their subresources: get, list, watch, create, update, patch, delete,
//! deletecollection, `status`, `scale`, `eviction`, `binding` and `log`.

use bytes::Bytes;
use hyper::{Method, Response};
use serde_json::{Value, json};

use super::errors::ApiError;
use super::http::{
    Body, Target, error_response, json_response, success, table_response, wants_table,
};
use super::resources::ResourceInfo;
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{DeleteOptions, ListOptions, Part};
use super::{Shared, patch, pods, watch};

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
    })
}

fn parse_yaml(body: &Bytes) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Ok(v) = serde_json::from_str(text) {
        return Ok(v);
    }
    serde_saphyr::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

fn dry_run(t: &Target) -> bool {
    t.query.get("dryRun").is_some_and(|v| v == "All")
}

/// Parses list options from the query.
pub fn list_options(ri: &ResourceInfo, t: &Target) -> Result<ListOptions, ApiError> {
    Ok(ListOptions {
        labels: LabelSelector::parse(
            t.query
                .get("labelSelector")
                .map(String::as_str)
                .unwrap_or_default(),
        )?,
        fields: FieldSelector::parse(
            t.query
                .get("fieldSelector")
                .map(String::as_str)
                .unwrap_or_default(),
            &ri.kind,
        )?,
        limit: t
            .query
            .get("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0),
        cont: t.query.get("continue").filter(|c| !c.is_empty()).cloned(),
    })
}

/// Routes one resource request.
pub async fn dispatch(
    shared: &Shared,
    method: &Method,
    t: &Target,
    content_type: &str,
    accept: &str,
    body: Bytes,
) -> Response<Body> {
    let Some(ri) = t.resource.clone() else {
        return error_response(&ApiError::no_route());
    };
    let result = match (method, t.name.as_deref(), t.sub.as_deref()) {
        (&Method::GET, None, _)
            if t.query
                .get("watch")
                .is_some_and(|w| w == "1" || w == "true") =>
        {
            return watch::serve(shared, &ri, t, wants_table(accept));
        }
        (&Method::GET, None, _) => list(shared, &ri, t, accept),
        (&Method::GET, Some(_), Some("log")) => return pods::log_response(shared, t).await,
        (&Method::GET, Some(name), Some("scale")) => shared
            .store
            .get(&ri, &t.namespace, name)
            .map(|o| (200, scale_of(&o))),
        (&Method::GET, Some(name), _) => match shared.store.get(&ri, &t.namespace, name) {
            Ok(o) if wants_table(accept) => {
                let include = t
                    .query
                    .get("includeObject")
                    .map(String::as_str)
                    .unwrap_or("Metadata");
                return table_response(&ri, &[o], json!({"resourceVersion": ""}), include);
            }
            other => other.map(|o| (200, o)),
        },
        (&Method::POST, None, _) => parse_body(&body)
            .and_then(|b| shared.store.create(&ri, &t.namespace, b, dry_run(t)))
            .map(|o| (201, o)),
        (&Method::POST, Some(name), Some("eviction")) => {
            pods::evict(shared, &t.namespace, name, dry_run(t)).map(|_| (201, success(201)))
        }
        (&Method::POST, Some(name), Some("binding")) => parse_body(&body)
            .and_then(|b| pods::bind(shared, &t.namespace, name, &b))
            .map(|_| (201, success(201))),
        (&Method::PUT, Some(name), sub) => update(shared, &ri, t, name, sub, &body),
        (&Method::PATCH, Some(name), sub) => {
            patch_object(shared, &ri, t, name, sub, content_type, &body)
        }
        (&Method::DELETE, Some(name), None) => delete_options(t, &body)
            .and_then(|o| shared.store.delete(&ri, &t.namespace, name, &o))
            .map(|o| (200, o)),
        (&Method::DELETE, None, None) => delete_collection(shared, &ri, t, &body),
        (m, _, _) => Err(ApiError::method_not_allowed(m.as_str())),
    };
    match result {
        Ok((code, v)) => json_response(code, &v),
        Err(e) => error_response(&e),
    }
}

fn list(
    shared: &Shared,
    ri: &ResourceInfo,
    t: &Target,
    accept: &str,
) -> Result<(u16, Value), ApiError> {
    let opts = list_options(ri, t)?;
    let ns = if ri.namespaced && !t.namespace.is_empty() {
        Some(t.namespace.as_str())
    } else {
        None
    };
    let list = shared.store.list(ri, ns, &opts)?;
    if wants_table(accept) {
        let include = t
            .query
            .get("includeObject")
            .map(String::as_str)
            .unwrap_or("Metadata");
        let items = list["items"].as_array().cloned().unwrap_or_default();
        return Ok((
            200,
            super::table::render(ri, &items, list["metadata"].clone(), include),
        ));
    }
    Ok((200, list))
}

fn update(
    shared: &Shared,
    ri: &ResourceInfo,
    t: &Target,
    name: &str,
    sub: Option<&str>,
    body: &Bytes,
) -> Result<(u16, Value), ApiError> {
    let obj = parse_body(body)?;
    match sub {
        None => shared
            .store
            .update(ri, &t.namespace, name, obj, Part::Main, dry_run(t))
            .map(|o| (200, o)),
        Some("status") if ri.status => shared
            .store
            .update(ri, &t.namespace, name, obj, Part::Status, dry_run(t))
            .map(|o| (200, o)),
        Some("scale") if ri.scale => {
            let replicas = obj["spec"]["replicas"].clone();
            let rv = obj["metadata"]["resourceVersion"]
                .as_str()
                .map(String::from);
            let o = shared
                .store
                .patch(ri, &t.namespace, name, Part::Main, dry_run(t), |o| {
                    if rv.as_deref().is_some_and(|rv| {
                        !rv.is_empty() && Some(rv) != o["metadata"]["resourceVersion"].as_str()
                    }) {
                        return Err(ApiError::stale(ri, name));
                    }
                    o["spec"]["replicas"] = replicas;
                    Ok(())
                })?;
            Ok((200, scale_of(&o)))
        }
        Some(s) => Err(ApiError::custom(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({s})"),
            Value::Null,
        )),
    }
}

fn patch_object(
    shared: &Shared,
    ri: &ResourceInfo,
    t: &Target,
    name: &str,
    sub: Option<&str>,
    content_type: &str,
    body: &Bytes,
) -> Result<(u16, Value), ApiError> {
    let ct = content_type.split(';').next().unwrap_or_default().trim();
    let builtin = super::resources::builtin(&ri.group, &ri.plural).is_some();
    let p = match ct {
        "application/apply-patch+yaml" => parse_yaml(body)?,
        "application/strategic-merge-patch+json" if !builtin => {
            return Err(ApiError::custom(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                Value::Null,
            ));
        }
        _ => parse_body(body)?,
    };
    if ct == "application/apply-patch+yaml"
        && sub.is_none()
        && shared.store.get(ri, &t.namespace, name).is_err()
    {
        // Server-side apply creates what does not exist.
        let mut obj = p.clone();
        obj["metadata"]["name"] = json!(name);
        obj["apiVersion"] = json!(ri.api_version());
        super::apply::record(&mut obj, &manager_of(t), "Apply", Some(&p));
        return shared
            .store
            .create(ri, &t.namespace, obj, dry_run(t))
            .map(|o| (201, o));
    }
    let part = match sub {
        None | Some("scale") => Part::Main,
        Some("status") => Part::Status,
        Some(s) => {
            return Err(ApiError::custom(
                404,
                "NotFound",
                format!("the server could not find the requested resource ({s})"),
                Value::Null,
            ));
        }
    };
    let is_scale = sub == Some("scale");
    let apply = |o: &mut Value| -> Result<(), ApiError> {
        let target: &mut Value = o;
        if is_scale {
            let mut scale = scale_of(target);
            apply_patch(ct, &mut scale, &p, builtin)?;
            target["spec"]["replicas"] = scale["spec"]["replicas"].clone();
            return Ok(());
        }
        let before_rv = target["metadata"]["resourceVersion"].clone();
        if ct == "application/apply-patch+yaml" {
            super::apply::drop_released_fields(target, &manager_of(t), &p);
        }
        apply_patch(ct, target, &p, builtin)?;
        if ct == "application/apply-patch+yaml" && p["metadata"]["resourceVersion"].is_null() {
            target["metadata"]["resourceVersion"] = before_rv;
        }
        if ct == "application/apply-patch+yaml" {
            super::apply::record(target, &manager_of(t), "Apply", Some(&p));
        }
        Ok(())
    };
    let o = shared
        .store
        .patch(ri, &t.namespace, name, part, dry_run(t), apply)?;
    Ok((200, if is_scale { scale_of(&o) } else { o }))
}

fn apply_patch(ct: &str, target: &mut Value, p: &Value, builtin: bool) -> Result<(), ApiError> {
    match ct {
        "application/json-patch+json" => patch::json_patch(target, p),
        "application/merge-patch+json" => {
            patch::merge(target, p);
            Ok(())
        }
        "application/strategic-merge-patch+json" => {
            patch::strategic(target, p);
            Ok(())
        }
        "application/apply-patch+yaml" => {
            if builtin {
                patch::strategic(target, p)
            } else {
                patch::merge(target, p)
            }
            Ok(())
        }
        other => Err(ApiError::custom(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other})"
            ),
            Value::Null,
        )),
    }
}

/// The `fieldManager` parameter (server-side apply requires one; kubectl and kube-rs send it).
fn manager_of(t: &Target) -> String {
    t.query
        .get("fieldManager")
        .cloned()
        .unwrap_or_else(|| "unknown".into())
}

/// The `autoscaling/v1` `Scale` of an object with `spec.replicas`.
pub fn scale_of(o: &Value) -> Value {
    let selector = o["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": o["metadata"]["name"], "namespace": o["metadata"]["namespace"], "uid": o["metadata"]["uid"],
                     "resourceVersion": o["metadata"]["resourceVersion"], "creationTimestamp": o["metadata"]["creationTimestamp"]},
        "spec": {"replicas": o["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": o["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

fn delete_options(t: &Target, body: &Bytes) -> Result<DeleteOptions, ApiError> {
    let b = parse_body(body)?;
    let q = |k: &str| t.query.get(k).cloned();
    Ok(DeleteOptions {
        propagation: b["propagationPolicy"]
            .as_str()
            .map(String::from)
            .or(q("propagationPolicy"))
            .or_else(|| match b["orphanDependents"].as_bool() {
                Some(true) => Some("Orphan".into()),
                _ => None,
            }),
        grace: b["gracePeriodSeconds"]
            .as_i64()
            .or(q("gracePeriodSeconds").and_then(|g| g.parse().ok())),
        uid: b["preconditions"]["uid"].as_str().map(String::from),
        rv: b["preconditions"]["resourceVersion"]
            .as_str()
            .map(String::from),
        dry_run: dry_run(t)
            || b["dryRun"]
                .as_array()
                .is_some_and(|a| a.iter().any(|d| d == "All")),
    })
}

fn delete_collection(
    shared: &Shared,
    ri: &ResourceInfo,
    t: &Target,
    body: &Bytes,
) -> Result<(u16, Value), ApiError> {
    let opts = delete_options(t, body)?;
    let lo = list_options(ri, t)?;
    let ns = if t.namespace.is_empty() {
        None
    } else {
        Some(t.namespace.as_str())
    };
    let list = shared.store.list(
        ri,
        ns,
        &ListOptions {
            limit: 0,
            cont: None,
            ..lo
        },
    )?;
    let mut deleted = Vec::new();
    for item in list["items"].as_array().cloned().unwrap_or_default() {
        let ns = super::meta::namespace(&item).to_string();
        if let Ok(o) = shared
            .store
            .delete(ri, &ns, super::meta::name(&item), &opts)
        {
            deleted.push(if o["kind"] == "Status" { item } else { o });
        }
    }
    Ok((
        200,
        json!({"kind": format!("{}List", ri.kind), "apiVersion": ri.api_version(), "metadata": {"resourceVersion": shared.store.resource_version().to_string()}, "items": deleted}),
    ))
}
