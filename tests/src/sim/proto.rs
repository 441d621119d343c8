//! Decoding of the few protobuf request bodies kubectl sends through its typed clients
//! (`kubectl create configmap|secret|namespace|serviceaccount`, evictions from `kubectl drain`):
//! the `k8s\0` envelope (`runtime.Unknown`, apimachinery/pkg/runtime/types_proto.go) around the
//! object, decoded into the same JSON the server stores. Field numbers follow
//! k8s.io/api/*/generated.proto.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::errors::ApiError;

/// The envelope's magic prefix.
pub const MAGIC: &[u8] = b"k8s\0";

/// One decoded wire field.
pub(crate) enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The fields of a message, in order.
pub(crate) fn fields(buf: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let f = match key & 7 {
            0 => Field::Varint(varint(buf, &mut pos)?),
            2 => {
                let len = varint(buf, &mut pos)? as usize;
                let b = buf.get(pos..pos + len)?;
                pos += len;
                Field::Bytes(b)
            }
            1 => {
                pos += 8;
                Field::Varint(0)
            }
            5 => {
                pos += 4;
                Field::Varint(0)
            }
            _ => return None,
        };
        out.push((key >> 3, f));
    }
    Some(out)
}

fn text(b: &[u8]) -> Value {
    json!(String::from_utf8_lossy(b))
}

fn entry(b: &[u8], bytes_value: bool) -> (String, Value) {
    let mut k = String::new();
    let mut v = json!("");
    for (n, f) in fields(b).unwrap_or_default() {
        if let Field::Bytes(x) = f {
            match n {
                1 => k = String::from_utf8_lossy(x).into_owned(),
                2 if bytes_value => v = json!(base64::engine::general_purpose::STANDARD.encode(x)),
                2 => v = text(x),
                _ => {}
            }
        }
    }
    (k, v)
}

/// `ObjectMeta` as JSON.
pub(crate) fn object_meta(b: &[u8]) -> Value {
    let mut m = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut finalizers = Vec::new();
    for (n, f) in fields(b).unwrap_or_default() {
        match (n, f) {
            (_, Field::Bytes([])) => {}
            (1, Field::Bytes(x)) => _ = m.insert("name".into(), text(x)),
            (2, Field::Bytes(x)) => _ = m.insert("generateName".into(), text(x)),
            (3, Field::Bytes(x)) => _ = m.insert("namespace".into(), text(x)),
            (6, Field::Bytes(x)) => _ = m.insert("resourceVersion".into(), text(x)),
            (11, Field::Bytes(x)) => {
                let (k, v) = entry(x, false);
                labels.insert(k, v);
            }
            (12, Field::Bytes(x)) => {
                let (k, v) = entry(x, false);
                annotations.insert(k, v);
            }
            (14, Field::Bytes(x)) => finalizers.push(text(x)),
            _ => {}
        }
    }
    if !labels.is_empty() {
        m.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), Value::Object(annotations));
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), Value::Array(finalizers));
    }
    Value::Object(m)
}

fn map_field(fs: &[(u64, Field<'_>)], n: u64, bytes_value: bool) -> Option<Value> {
    let m: Map<String, Value> = fs
        .iter()
        .filter(|(k, _)| *k == n)
        .filter_map(|(_, f)| match f {
            Field::Bytes(x) => Some(entry(x, bytes_value)),
            Field::Varint(_) => None,
        })
        .collect();
    (!m.is_empty()).then_some(Value::Object(m))
}

fn bytes_of<'a>(fs: &'a [(u64, Field<'_>)], n: u64) -> Option<&'a [u8]> {
    fs.iter().find_map(|(k, f)| match f {
        Field::Bytes(x) if *k == n => Some(*x),
        _ => None,
    })
}

fn bool_of(fs: &[(u64, Field<'_>)], n: u64) -> Option<bool> {
    fs.iter().find_map(|(k, f)| match f {
        Field::Varint(v) if *k == n => Some(*v != 0),
        _ => None,
    })
}

fn delete_options(b: &[u8]) -> Value {
    let fs = fields(b).unwrap_or_default();
    let mut o = json!({});
    for (n, f) in &fs {
        match (n, f) {
            (1, Field::Varint(v)) => o["gracePeriodSeconds"] = json!(*v as i64),
            (2, Field::Bytes(x)) => {
                let p = fields(x).unwrap_or_default();
                o["preconditions"] = json!({"uid": bytes_of(&p, 1).map(text), "resourceVersion": bytes_of(&p, 2).map(text)});
            }
            (3, Field::Varint(v)) => o["orphanDependents"] = json!(*v != 0),
            (4, Field::Bytes(x)) => o["propagationPolicy"] = text(x),
            (5, Field::Bytes(x)) => o["dryRun"] = json!([text(x)]),
            _ => {}
        }
    }
    o
}

/// Decodes a protobuf body into JSON.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let bad = |why: &str| {
        ApiError::custom(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml ({why})"
            ),
            Value::Null,
        )
    };
    let inner = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("no k8s envelope"))?;
    let env = fields(inner).ok_or_else(|| bad("bad envelope"))?;
    let tm = fields(bytes_of(&env, 1).unwrap_or_default()).unwrap_or_default();
    let api_version = bytes_of(&tm, 1)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let kind = bytes_of(&tm, 2)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let raw = fields(bytes_of(&env, 2).unwrap_or_default()).ok_or_else(|| bad("bad object"))?;
    let mut obj = json!({"apiVersion": api_version, "kind": kind, "metadata": object_meta(bytes_of(&raw, 1).unwrap_or_default())});
    match kind.as_str() {
        "ConfigMap" => {
            if let Some(d) = map_field(&raw, 2, false) {
                obj["data"] = d;
            }
            if let Some(d) = map_field(&raw, 3, true) {
                obj["binaryData"] = d;
            }
            if let Some(i) = bool_of(&raw, 4) {
                obj["immutable"] = json!(i);
            }
        }
        "Secret" => {
            if let Some(d) = map_field(&raw, 2, true) {
                obj["data"] = d;
            }
            obj["type"] = bytes_of(&raw, 3).map(text).unwrap_or(json!("Opaque"));
            if let Some(d) = map_field(&raw, 4, false) {
                obj["stringData"] = d;
            }
            if let Some(i) = bool_of(&raw, 5) {
                obj["immutable"] = json!(i);
            }
        }
        "Namespace" | "ServiceAccount" => {}
        "Eviction" => {
            if let Some(d) = bytes_of(&raw, 2) {
                obj["deleteOptions"] = delete_options(d);
            }
        }
        "DeleteOptions" => return Ok(delete_options(bytes_of(&env, 2).unwrap_or_default())),
        "Deployment" | "Job" => {
            if let Some(spec) =
                bytes_of(&raw, 2).and_then(|b| super::proto_workloads::spec_of(&kind, b))
            {
                obj["spec"] = spec;
            }
        }
        other => {
            return Err(bad(&format!(
                "protobuf bodies of kind {other} are not supported; send JSON"
            )));
        }
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(fields: &[(u64, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, b) in fields {
            out.push(((n << 3) | 2) as u8);
            out.push(b.len() as u8);
            out.extend_from_slice(b);
        }
        out
    }

    #[test]
    fn decodes_a_config_map() {
        let meta = msg(&[(1, b"cfg")]);
        let entry = msg(&[(1, b"a"), (2, b"b")]);
        let cm = msg(&[(1, &meta), (2, &entry)]);
        let tm = msg(&[(1, b"v1"), (2, b"ConfigMap")]);
        let mut body = MAGIC.to_vec();
        body.extend(msg(&[(1, &tm), (2, &cm)]));
        let v = decode(&body).expect("decodes");
        assert_eq!(v["metadata"]["name"], "cfg");
        assert_eq!(v["data"]["a"], "b");
    }
}
