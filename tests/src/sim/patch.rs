//! Patch types the API server accepts: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and
//! strategic merge patch (apimachinery/pkg/util/strategicpatch), whose lists merge by the
//! `patchMergeKey` of the Kubernetes types.

use serde_json::{Map, Value};

use super::errors::ApiError;

/// RFC 7386 merge.
pub fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn pointer_parts(path: &str) -> Result<Vec<String>, ApiError> {
    if path.is_empty() {
        return Ok(vec![]);
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| ApiError::bad_request(format!("invalid JSON pointer {path:?}")))?;
    Ok(rest
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn parent_mut<'a>(doc: &'a mut Value, parts: &[String]) -> Result<&'a mut Value, ApiError> {
    let mut cur = doc;
    for p in parts {
        cur = match cur {
            Value::Object(m) => m.get_mut(p),
            Value::Array(a) => p.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| ApiError::custom(422, "Invalid", format!("the server rejected our request due to an error in our request: doc is missing path: {p}"), Value::Null))?;
    }
    Ok(cur)
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), ApiError> {
    let parts = pointer_parts(path)?;
    let Some((last, parents)) = parts.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, parents)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            let idx = if last == "-" {
                a.len()
            } else {
                last.parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid index {last}")))?
            };
            if idx > a.len() {
                return Err(ApiError::custom(
                    422,
                    "Invalid",
                    format!("add operation index out of bounds: {idx}"),
                    Value::Null,
                ));
            }
            a.insert(idx, value);
        }
        _ => return Err(ApiError::bad_request(format!("cannot add at {path}"))),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, ApiError> {
    let parts = pointer_parts(path)?;
    let (last, parents) = parts
        .split_last()
        .ok_or_else(|| ApiError::bad_request("cannot remove the root"))?;
    let missing = || {
        ApiError::custom(
            422,
            "Invalid",
            format!(
                "the server rejected our request due to an error in our request: Unable to remove nonexistent key: {last}: missing value"
            ),
            Value::Null,
        )
    };
    match parent_mut(doc, parents)? {
        Value::Object(m) => m.remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let idx: usize = last.parse().map_err(|_| missing())?;
            if idx < a.len() {
                Ok(a.remove(idx))
            } else {
                Err(missing())
            }
        }
        _ => Err(missing()),
    }
}

/// RFC 6902 patch.
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), ApiError> {
    let ops = ops
        .as_array()
        .ok_or_else(|| ApiError::bad_request("json patch must be an array"))?;
    for op in ops {
        let path = op["path"].as_str().unwrap_or_default();
        match op["op"].as_str().unwrap_or_default() {
            "add" => add(doc, path, op["value"].clone())?,
            "remove" => {
                remove(doc, path)?;
            }
            "replace" => {
                remove(doc, path)?;
                add(doc, path, op["value"].clone())?;
            }
            "move" => {
                let v = remove(doc, op["from"].as_str().unwrap_or_default())?;
                add(doc, path, v)?;
            }
            "copy" => {
                let v = doc
                    .pointer(op["from"].as_str().unwrap_or_default())
                    .cloned()
                    .ok_or_else(|| ApiError::bad_request("copy from a missing path"))?;
                add(doc, path, v)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&op["value"]) {
                    return Err(ApiError::custom(
                        422,
                        "Invalid",
                        format!(
                            "the server rejected our request due to an error in our request: testing value {path} failed"
                        ),
                        Value::Null,
                    ));
                }
            }
            other => return Err(ApiError::bad_request(format!("Unexpected kind: {other}"))),
        }
    }
    Ok(())
}

/// The merge key of a list field, from the Kubernetes types' `patchMergeKey` tags.
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "volumeDevices" => "name",
        "volumeMounts" => "mountPath",
        "ownerReferences" => "uid",
        "conditions" => "type",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "ports" if items.iter().any(|i| i.get("containerPort").is_some()) => "containerPort",
        "ports" => "port",
        _ => return None,
    })
}

/// Lists of scalars merged as sets (`patchStrategy:"merge"` on `[]string`).
fn merges_primitives(field: &str) -> bool {
    field == "finalizers"
}

/// Strategic merge patch.
pub fn strategic(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut clean = patch.clone();
        clean.as_object_mut().map(|m| m.remove("$patch"));
        *target = clean;
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(cur)), Some(del)) = (t.get_mut(field), v.as_array()) {
                cur.retain(|x| !del.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (t.get_mut(k), v) {
            (Some(Value::Array(cur)), Value::Array(items)) => {
                if let Some(key) = merge_key(k, items) {
                    merge_list(cur, items, key);
                } else if merges_primitives(k) {
                    for i in items {
                        if !cur.contains(i) {
                            cur.push(i.clone());
                        }
                    }
                } else {
                    *cur = items.clone();
                }
            }
            (Some(cur @ Value::Object(_)), Value::Object(_)) => strategic(cur, v),
            _ => {
                let mut clean = v.clone();
                strip_directives(&mut clean);
                t.insert(k.clone(), clean);
            }
        }
    }
}

fn merge_list(cur: &mut Vec<Value>, items: &[Value], key: &str) {
    for item in items {
        let id = &item[key];
        let pos = cur.iter().position(|c| &c[key] == id);
        match (item.get("$patch").and_then(Value::as_str), pos) {
            (Some("delete"), Some(i)) => {
                cur.remove(i);
            }
            (Some("delete"), None) => {}
            (_, Some(i)) => strategic(&mut cur[i], item),
            (_, None) => {
                let mut clean = item.clone();
                strip_directives(&mut clean);
                cur.push(clean);
            }
        }
    }
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut d = json!({"spec": {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}]}});
        strategic(
            &mut d,
            &json!({"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "a", "image": "x:2"}]}}),
        );
        assert_eq!(d["spec"]["containers"][0]["image"], "x:2");
        assert_eq!(d["spec"]["containers"][1]["image"], "y:1");
        strategic(
            &mut d,
            &json!({"spec": {"containers": [{"name": "b", "$patch": "delete"}]}}),
        );
        assert_eq!(d["spec"]["containers"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn merge_patch_replaces_lists_and_removes_nulls() {
        let mut d = json!({"a": [1, 2], "b": {"c": 1, "d": 2}});
        merge(&mut d, &json!({"a": [3], "b": {"c": null}}));
        assert_eq!(d, json!({"a": [3], "b": {"d": 2}}));
    }

    #[test]
    fn json_patch_ops() {
        let mut d = json!({"metadata": {"finalizers": ["a", "b"]}});
        json_patch(&mut d, &json!([{"op": "remove", "path": "/metadata/finalizers/0"}, {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}}])).expect("patch");
        assert_eq!(
            d,
            json!({"metadata": {"finalizers": ["b"], "labels": {"x": "y"}}})
        );
        assert!(
            json_patch(
                &mut d,
                &json!([{"op": "test", "path": "/metadata/labels/x", "value": "z"}])
            )
            .is_err()
        );
    }
}
