//! The HTTP front of the API server: connection handling, path routing to discovery, resources
//! and subresources, and response encoding (JSON, Table, watch streams).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::errors::ApiError;
use super::resources::ResourceInfo;
use super::{Shared, api, discovery, exec, table};

/// A response body: whole or streamed.
pub type Body = BoxBody<Bytes, Infallible>;

/// A parsed request path and query.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Query parameters, decoded.
    pub query: HashMap<String, String>,
    /// The resource, when the path names one.
    pub resource: Option<ResourceInfo>,
    /// Namespace from the path (empty for cluster scope or all namespaces).
    pub namespace: String,
    /// Object name, if the path names one.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`, `exec`, `log`, `eviction`, …).
    pub sub: Option<String>,
}

/// Whole JSON response.
pub fn json_response(code: u16, body: &Value) -> Response<Body> {
    respond(code, "application/json", Bytes::from(body.to_string()))
}

/// A response with any content type.
pub fn respond(code: u16, content_type: &str, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body).boxed());
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert("content-type", v);
    }
    r
}

/// The `Status` body of an error.
pub fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.status())
}

/// A streamed response fed by a channel of chunks.
pub fn stream_response(
    content_type: &str,
    rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> Response<Body> {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut r = Response::new(StreamBody::new(stream).boxed());
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert("content-type", v);
    }
    r
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    q.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Splits `/api/v1/namespaces/ns/pods/name/sub` into its parts; `Err` for unknown resources.
fn route(shared: &Shared, path: &str, query: HashMap<String, String>) -> Result<Target, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::no_route()),
    };
    // `/namespaces/<ns>/<plural>…` is namespaced unless it is the namespace's own subresource.
    let own_sub = matches!(rest, ["namespaces", _, "status" | "finalize"]);
    let (namespace, rest): (String, Vec<String>) = match rest {
        ["namespaces", ns, more @ ..] if !more.is_empty() && !own_sub => {
            (ns.to_string(), more.iter().map(|s| s.to_string()).collect())
        }
        other => (String::new(), other.iter().map(|s| s.to_string()).collect()),
    };
    let ri = shared
        .store
        .resolve(
            group,
            version,
            rest.first().map(String::as_str).unwrap_or_default(),
        )
        .ok_or_else(ApiError::no_route)?;
    Ok(Target {
        query,
        namespace: if ri.namespaced {
            namespace
        } else {
            String::new()
        },
        name: rest.get(1).cloned(),
        sub: rest.get(2).cloned(),
        resource: Some(ri),
    })
}

/// Handles one request.
pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query());
    let accept = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let method = req.method().clone();
    if method == Method::GET
        && let Some(r) = discovery_response(&shared, &path, &accept)
    {
        return Ok(r);
    }
    let target = match route(&shared, &path, query) {
        Ok(t) => t,
        Err(e) => return Ok(error_response(&e)),
    };
    if let Some(r) = shared.faults.before(&target, &method).await {
        return Ok(error_response(&r));
    }
    if target.sub.as_deref() == Some("exec") || target.sub.as_deref() == Some("attach") {
        return Ok(exec::handle(shared, target, req).await);
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let mut body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(error_response(&ApiError::bad_request(e.to_string()))),
    };
    let mut content_type = content_type;
    if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        match super::proto::decode(&body) {
            Ok(v) => {
                body = Bytes::from(v.to_string());
                content_type = "application/json".into();
            }
            Err(e) => return Ok(error_response(&e)),
        }
    }
    Ok(api::dispatch(&shared, &method, &target, &content_type, &accept, body).await)
}

fn discovery_response(shared: &Shared, path: &str, accept: &str) -> Option<Response<Body>> {
    let all = shared.store.resources();
    let aggregated = accept.contains("as=APIGroupDiscoveryList");
    let agg = |legacy: bool| {
        let ct = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
        respond(
            200,
            ct,
            Bytes::from(discovery::aggregated(&all, legacy).to_string()),
        )
    };
    let path = path.trim_end_matches('/');
    Some(match path {
        "/version" => json_response(200, &discovery::version()),
        "/healthz" | "/readyz" | "/livez" => respond(200, "text/plain", Bytes::from_static(b"ok")),
        "/api" if aggregated => agg(true),
        "/api" => json_response(200, &discovery::legacy_versions()),
        "/apis" if aggregated => agg(false),
        "/apis" => json_response(200, &discovery::group_list(&all)),
        "/api/v1" => json_response(200, &discovery::resource_list(&all, "", "v1")?),
        p if p.starts_with("/apis/") => {
            let parts: Vec<&str> = p["/apis/".len()..].split('/').collect();
            match parts.as_slice() {
                [g] => json_response(200, &discovery::group(&all, g)?),
                [g, v] => json_response(200, &discovery::resource_list(&all, g, v)?),
                _ => return None,
            }
        }
        "/openapi/v3" => json_response(200, &discovery::openapi_root(&all)),
        p if p.starts_with("/openapi/v3/") => json_response(
            200,
            &discovery::openapi_gv(&all, &p["/openapi/v3/".len()..])?,
        ),
        // An empty OpenAPI v2 document (an empty protobuf message is a valid one): kubectl
        // validates `kind: List` files on the client and skips kinds without a schema.
        "/openapi/v2" => respond(
            200,
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            Bytes::new(),
        ),
        p if p.starts_with("/openapi") => error_response(&ApiError::no_route()),
        _ => return None,
    })
}

/// Whether the client asked for a Table (`kubectl get` without `-o`).
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

/// Renders objects as a Table response.
pub fn table_response(
    ri: &ResourceInfo,
    items: &[Value],
    list_meta: Value,
    include: &str,
) -> Response<Body> {
    json_response(200, &table::render(ri, items, list_meta, include))
}

/// `{"kind":"Status","status":"Success"}` with a code.
pub fn success(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}
