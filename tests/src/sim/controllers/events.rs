//! Events the controllers record about objects (core/v1 `Event`, as client-go's event recorder
//! writes them), so `kubectl describe` and `kubectl get events` show what happened.

use serde_json::{Value, json};

use crate::sim::resources::builtin;
use crate::sim::{NODE, Shared, meta};

/// Records one event about `obj` from `component`; `warning` selects type `Warning`.
pub fn record(
    shared: &Shared,
    obj: &Value,
    warning: bool,
    reason: &str,
    message: &str,
    component: &str,
) {
    let Some(ri) = builtin("", "events") else {
        return;
    };
    let ns = match meta::namespace(obj) {
        "" => "default",
        ns => ns,
    };
    let now = meta::now();
    let event = json!({
        "metadata": {"generateName": format!("{}.", meta::name(obj)), "namespace": ns},
        "involvedObject": {
            "kind": obj["kind"], "namespace": obj["metadata"]["namespace"], "name": meta::name(obj),
            "uid": meta::uid(obj), "apiVersion": obj["apiVersion"], "resourceVersion": obj["metadata"]["resourceVersion"],
        },
        "reason": reason,
        "message": message,
        "source": {"component": component, "host": NODE},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": if warning { "Warning" } else { "Normal" },
        "reportingComponent": component,
        "reportingInstance": NODE,
    });
    let _ = shared.store.create(&ri, ns, event, false);
}
