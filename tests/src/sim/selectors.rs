//! Label and field selectors: the query-string forms (`labelSelector`, `fieldSelector`) and the
//! `metav1.LabelSelector` objects workloads carry (apimachinery pkg/labels, pkg/fields).

use serde_json::Value;

use super::errors::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Req>);

fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn set_values(s: &str) -> Result<Vec<String>, ApiError> {
    let inner = s.trim().strip_prefix('(').and_then(|s| s.strip_suffix(')'));
    let inner =
        inner.ok_or_else(|| ApiError::bad_request(format!("unable to parse requirement: {s}")))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (f,g),!h`.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let req = if let Some(k) = part.strip_prefix('!') {
                Req::NotExists(k.trim().into())
            } else if let Some((k, v)) = part.split_once("!=") {
                Req::Ne(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==") {
                Req::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once('=') {
                Req::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once(" notin ") {
                Req::NotIn(k.trim().into(), set_values(v)?)
            } else if let Some((k, v)) = part.split_once(" in ") {
                Req::In(k.trim().into(), set_values(v)?)
            } else {
                Req::Exists(part.trim().into())
            };
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    /// A selector from a `metav1.LabelSelector` object; `None` for a null selector (matches nothing).
    pub fn from_object(sel: &Value) -> Option<Self> {
        if !sel.is_object() {
            return None;
        }
        let mut reqs = Vec::new();
        if let Some(m) = sel["matchLabels"].as_object() {
            for (k, v) in m {
                reqs.push(Req::Eq(k.clone(), v.as_str().unwrap_or_default().into()));
            }
        }
        for e in sel["matchExpressions"]
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
        {
            let key = e["key"].as_str().unwrap_or_default().to_string();
            let values: Vec<String> = e["values"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            reqs.push(match e["operator"].as_str().unwrap_or_default() {
                "In" => Req::In(key, values),
                "NotIn" => Req::NotIn(key, values),
                "Exists" => Req::Exists(key),
                _ => Req::NotExists(key),
            });
        }
        Some(Self(reqs))
    }

    /// Whether these labels (`metadata.labels`) match.
    pub fn matches(&self, labels: &Value) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v.as_str()),
            Req::Ne(k, v) => get(k) != Some(v.as_str()),
            Req::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Req::NotIn(k, vs) => get(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }

    /// Whether the selector is empty (matches everything).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A parsed field selector: `metadata.name=x,status.phase!=Running`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

/// Fields each kind may be selected on besides `metadata.name` and `metadata.namespace`
/// (the `GetAttrs`/field label conversion functions of pkg/registry and pkg/apis/core/v1).
fn supported(kind: &str, field: &str) -> bool {
    if matches!(field, "metadata.name" | "metadata.namespace") {
        return true;
    }
    match kind {
        "Pod" => matches!(
            field,
            "spec.nodeName"
                | "spec.restartPolicy"
                | "spec.schedulerName"
                | "spec.serviceAccountName"
                | "status.phase"
                | "status.podIP"
                | "status.nominatedNodeName"
                | "spec.hostNetwork"
        ),
        "Event" => {
            field.starts_with("involvedObject.")
                || matches!(field, "reason" | "type" | "source" | "reportingComponent")
        }
        "Secret" => field == "type",
        "Namespace" => field == "status.phase",
        "Node" => field == "spec.unschedulable",
        "ReplicaSet" | "StatefulSet" => field == "status.replicas",
        "Job" => field == "status.successful",
        "PersistentVolumeClaim" | "PersistentVolume" => field == "status.phase",
        _ => false,
    }
}

fn lookup(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for part in path.split('.') {
        cur = &cur[part];
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl FieldSelector {
    /// Parses a field selector, rejecting fields the kind does not support (400, like the
    /// apiserver's `field label not supported`).
    pub fn parse(s: &str, kind: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let (k, neg, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, false, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let k = k.trim();
            if !supported(kind, k) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {k}"
                )));
            }
            reqs.push((k.to_string(), neg, v.trim().to_string()));
        }
        Ok(Self(reqs))
    }

    /// Whether the object matches.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0
            .iter()
            .all(|(k, neg, v)| (lookup(obj, k) == *v) != *neg)
    }

    /// The `metadata.name` this selector pins, if any (used by `kubectl wait`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_forms() {
        let labels = json!({"app": "mysql", "tier": "db"});
        assert!(
            LabelSelector::parse("app=mysql,tier in (db, cache)")
                .expect("parse")
                .matches(&labels)
        );
        assert!(
            !LabelSelector::parse("app!=mysql")
                .expect("parse")
                .matches(&labels)
        );
        assert!(
            LabelSelector::parse("!missing,app")
                .expect("parse")
                .matches(&labels)
        );
        assert!(
            !LabelSelector::parse("tier notin (db)")
                .expect("parse")
                .matches(&labels)
        );
    }

    #[test]
    fn field_selector_rejects_unknown_fields() {
        assert!(FieldSelector::parse("spec.foo=1", "Pod").is_err());
        let fs =
            FieldSelector::parse("status.phase=Running,metadata.name!=a", "Pod").expect("parse");
        assert!(fs.matches(&json!({"metadata": {"name": "b"}, "status": {"phase": "Running"}})));
    }

    #[test]
    fn object_selector_with_expressions() {
        let sel = json!({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]});
        let s = LabelSelector::from_object(&sel).expect("selector");
        assert!(s.matches(&json!({"a": "1", "b": "x"})));
        assert!(!s.matches(&json!({"a": "1"})));
    }
}
