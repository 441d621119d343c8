//! Object metadata helpers: uids, timestamps, generated names and small JSON accessors.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// A random version-4 style UUID.
pub fn new_uid() -> String {
    let a = random_u64();
    let b = random_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// Five characters as `generateName` appends (apimachinery util/rand `String`).
pub fn random_suffix(n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut r = random_u64();
    (0..n)
        .map(|_| {
            let c = ALPHABET[(r % ALPHABET.len() as u64) as usize] as char;
            r /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// The current time as RFC 3339 with second precision, as `metav1.Time` serialises.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Seconds since an RFC 3339 time, 0 if it does not parse.
pub fn age_seconds(ts: &str) -> i64 {
    ts.parse::<jiff::Timestamp>()
        .map(|t| jiff::Timestamp::now().as_second() - t.as_second())
        .unwrap_or(0)
}

/// `metadata.name`.
pub fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

/// `metadata.namespace`.
pub fn namespace(obj: &Value) -> &str {
    obj["metadata"]["namespace"].as_str().unwrap_or_default()
}

/// `metadata.uid`.
pub fn uid(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or_default()
}

/// Whether `metadata.deletionTimestamp` is set.
pub fn deleting(obj: &Value) -> bool {
    obj["metadata"]["deletionTimestamp"].is_string()
}

/// The finalizers.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Replaces the finalizers, removing the field when empty.
pub fn set_finalizers(obj: &mut Value, fins: Vec<String>) {
    if let Some(m) = obj["metadata"].as_object_mut() {
        if fins.is_empty() {
            m.remove("finalizers");
        } else {
            m.insert("finalizers".into(), Value::from(fins));
        }
    }
}

/// Whether `metadata.ownerReferences` names this uid.
pub fn owned_by(obj: &Value, owner_uid: &str) -> bool {
    owner_refs(obj)
        .iter()
        .any(|r| r["uid"].as_str() == Some(owner_uid))
}

/// The controller owner reference, if any.
pub fn controller_ref(obj: &Value) -> Option<&Value> {
    owner_refs(obj)
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
}

/// `metadata.ownerReferences`.
pub fn owner_refs(obj: &Value) -> &[Value] {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
}

/// An owner reference to `owner` marked as its controller.
pub fn controller_ref_to(owner: &Value) -> Value {
    serde_json::json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Parses a Kubernetes quantity (`10Gi`, `500M`, `1.5`, `100m`) to a number of base units.
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let idx = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(idx);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "Ki" => 1024.0,
        "Mi" => 1024.0f64.powi(2),
        "Gi" => 1024.0f64.powi(3),
        "Ti" => 1024.0f64.powi(4),
        "Pi" => 1024.0f64.powi(5),
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    Some(n * mult)
}

/// A quantity field as base units, 0 when absent or unparsable.
pub fn quantity(v: &Value) -> f64 {
    match v {
        Value::String(s) => parse_quantity(s).unwrap_or(0.0),
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("1Gi"), Some(1073741824.0));
        assert_eq!(parse_quantity("500M"), Some(5e8));
        assert_eq!(parse_quantity("bogus"), None);
    }

    #[test]
    fn uid_shape() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_ne!(u, new_uid());
    }
}
