//! Server-side apply bookkeeping: each Apply manager's field set is kept in `managedFields`
//! (`fieldsV1` format, lists atomic), and a field a manager applied before but leaves out now
//! is removed unless another Apply manager still applies it
//! (k8s.io/apimachinery/pkg/util/managedfields, sigs.k8s.io/structured-merge-diff). Conflicts
//! with other managers are not detected: every apply behaves as if forced.

use serde_json::{Map, Value, json};

/// Fields that identify the object rather than belong to a manager.
fn identity(path: &[String]) -> bool {
    matches!(path, [a] if a == "apiVersion" || a == "kind")
        || matches!(path, [m, f] if m == "metadata" && matches!(f.as_str(), "name" | "namespace" | "resourceVersion" | "managedFields"))
}

fn leaf_paths(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                prefix.push(k.clone());
                leaf_paths(x, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            if !identity(prefix) {
                out.push(prefix.clone());
            }
        }
    }
}

fn paths_of_applied(applied: &Value) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    leaf_paths(applied, &mut Vec::new(), &mut out);
    out
}

fn to_fields_v1(paths: &[Vec<String>]) -> Value {
    let mut root = Map::new();
    for p in paths {
        let mut cur = &mut root;
        for k in p {
            let next = cur.entry(format!("f:{k}")).or_insert_with(|| json!({}));
            cur = next.as_object_mut().expect("fieldsV1 nodes are objects");
        }
    }
    Value::Object(root)
}

fn from_fields_v1(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v.as_object() {
        Some(m) if !m.is_empty() => {
            for (k, x) in m {
                if let Some(name) = k.strip_prefix("f:") {
                    prefix.push(name.to_string());
                    from_fields_v1(x, prefix, out);
                    prefix.pop();
                }
            }
        }
        _ => out.push(prefix.clone()),
    }
}

fn applied_by(obj: &Value, manager: Option<&str>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for e in obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
    {
        let mine = manager.is_none_or(|m| e["manager"] == json!(m));
        if e["operation"] == "Apply" && mine {
            from_fields_v1(&e["fieldsV1"], &mut Vec::new(), &mut out);
        }
    }
    out
}

fn remove_path(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for p in parents {
        match cur.get_mut(p.as_str()) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

/// Before merging `applied` from `manager`: removes what the manager applied last time and
/// leaves out now, unless another Apply manager applies it.
pub fn drop_released_fields(obj: &mut Value, manager: &str, applied: &Value) {
    let now = paths_of_applied(applied);
    let before = applied_by(obj, Some(manager));
    let others: Vec<Vec<String>> = obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["manager"] != json!(manager))
                .cloned()
                .collect::<Vec<_>>()
        })
        .map(|entries| applied_by(&json!({"metadata": {"managedFields": entries}}), None))
        .unwrap_or_default();
    for p in before {
        let still = now.iter().any(|n| n.starts_with(&p) || p.starts_with(n));
        let owned_elsewhere = others.iter().any(|o| o.starts_with(&p) || p.starts_with(o));
        if !still && !owned_elsewhere {
            remove_path(obj, &p);
        }
    }
}

/// Records `manager`'s field set (from the applied configuration, or empty for updates).
pub fn record(obj: &mut Value, manager: &str, operation: &str, applied: Option<&Value>) {
    let fields = applied
        .map(|a| to_fields_v1(&paths_of_applied(a)))
        .unwrap_or_else(|| json!({}));
    let entry = json!({"manager": manager, "operation": operation, "apiVersion": obj["apiVersion"], "time": super::meta::now(), "fieldsType": "FieldsV1", "fieldsV1": fields});
    let mf = &mut obj["metadata"]["managedFields"];
    if !mf.is_array() {
        *mf = json!([]);
    }
    if let Some(a) = mf.as_array_mut() {
        a.retain(|e| !(e["manager"] == json!(manager) && e["operation"] == json!(operation)));
        a.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_left_out_of_the_next_apply_is_removed() {
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
        record(
            &mut obj,
            "m",
            "Apply",
            Some(&json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}})),
        );
        assert_eq!(
            obj["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:data": {"f:a": {}, "f:b": {}}})
        );
        drop_released_fields(
            &mut obj,
            "m",
            &json!({"metadata": {"name": "c"}, "data": {"a": "1"}}),
        );
        assert_eq!(obj["data"], json!({"a": "1"}));
    }

    #[test]
    fn fields_another_manager_applies_stay() {
        let mut obj = json!({"metadata": {"name": "c"}, "data": {"a": "1"}});
        record(&mut obj, "m", "Apply", Some(&json!({"data": {"a": "1"}})));
        record(
            &mut obj,
            "other",
            "Apply",
            Some(&json!({"data": {"a": "1"}})),
        );
        drop_released_fields(&mut obj, "m", &json!({"metadata": {"name": "c"}}));
        assert_eq!(obj["data"], json!({"a": "1"}));
    }
}
