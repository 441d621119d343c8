//! Watch streams (`?watch=1`): newline-delimited `WatchEvent`s from a resourceVersion, an
//! `ERROR` event with a 410 `Expired` Status when that version is older than the history
//! (as the watch cache does), and closing on `timeoutSeconds` or an injected drop.

use std::time::Duration;

use bytes::Bytes;
use hyper::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::api::list_options;
use super::http::{Body, Target, error_response, stream_response};
use super::resources::ResourceInfo;
use super::store::Event;
use super::{Shared, meta};

/// How watch events are encoded: plain objects, or one-row Tables for `kubectl get -w`
/// (the first event carries the column definitions, later ones none, as
/// apiserver/pkg/endpoints/handlers/watch.go does).
struct Encoder {
    table: Option<(ResourceInfo, String)>,
    sent_header: bool,
}

impl Encoder {
    fn encode(&mut self, kind: &str, object: &Value) -> Bytes {
        match &self.table {
            Some((ri, include)) if kind != "ERROR" => {
                let list_meta = json!({"resourceVersion": object["metadata"]["resourceVersion"]});
                let mut t =
                    super::table::render(ri, std::slice::from_ref(object), list_meta, include);
                if self.sent_header {
                    t["columnDefinitions"] = json!([]);
                }
                self.sent_header = true;
                line(kind, &t)
            }
            _ => line(kind, object),
        }
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

/// Starts a watch response.
pub fn serve(shared: &Shared, ri: &ResourceInfo, t: &Target, table: bool) -> Response<Body> {
    let opts = match list_options(ri, t) {
        Ok(o) => o,
        Err(e) => return error_response(&e),
    };
    // `sendInitialEvents=true` (streaming lists, KEP-3157): the current objects as ADDED, then a
    // BOOKMARK annotated `k8s.io/initial-events-end`.
    let initial_events = t
        .query
        .get("sendInitialEvents")
        .is_some_and(|v| v == "true");
    let from = match t.query.get("resourceVersion").map(String::as_str) {
        _ if initial_events => None,
        None | Some("") | Some("0") => None,
        Some(rv) => match rv.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return error_response(&super::errors::ApiError::bad_request(format!(
                    "invalid resource version: {rv}"
                )));
            }
        },
    };
    let timeout = t
        .query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1800);
    let ns = if ri.namespaced {
        t.namespace.clone()
    } else {
        String::new()
    };
    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    let matches = move |o: &Value| -> bool {
        (ns.is_empty() || meta::namespace(o) == ns)
            && opts.labels.matches(&o["metadata"]["labels"])
            && opts.fields.matches(o)
    };
    let floor_rv = shared.store.resource_version();
    let (initial, mut events) = match shared.store.watch(ri, from) {
        Ok(x) => x,
        Err(e) => {
            let _ = tx.try_send(line("ERROR", &e.status()));
            return stream_response("application/json", rx);
        }
    };
    let key = ri.key();
    let include = t
        .query
        .get("includeObject")
        .cloned()
        .unwrap_or_else(|| "Metadata".into());
    let mut enc = Encoder {
        table: table.then(|| (ri.clone(), include)),
        sent_header: false,
    };
    let mut dropped = shared.faults.watch_drops();
    let end_bookmark = initial_events.then(|| {
        json!({"kind": ri.kind, "apiVersion": ri.api_version(), "metadata": {"annotations": {"k8s.io/initial-events-end": "true"}}})
    });
    tokio::spawn(async move {
        for ev in initial.iter().filter(|e| matches(&e.object)) {
            if tx.send(enc.encode(ev.kind, &ev.object)).await.is_err() {
                return;
            }
        }
        if let Some(bookmark) = end_bookmark {
            let rv = initial.first().map(|e| e.rv).unwrap_or(floor_rv);
            let mut b = bookmark;
            b["metadata"]["resourceVersion"] = json!(rv.to_string());
            if tx.send(line("BOOKMARK", &b)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        loop {
            let ev: std::sync::Arc<Event> = tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = dropped.changed() => return,
                r = events.recv() => match r {
                    Ok(ev) => ev,
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if ev.key == key
                && matches(&ev.object)
                && tx.send(enc.encode(ev.kind, &ev.object)).await.is_err()
            {
                return;
            }
        }
    });
    stream_response("application/json", rx)
}
