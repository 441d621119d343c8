//! API errors rendered as `meta.k8s.io/v1` `Status` bodies with the reason, code and message
//! text kube-apiserver uses (k8s.io/apimachinery/pkg/api/errors/errors.go).

use serde_json::{Value, json};

use super::resources::ResourceInfo;

/// One failed request, ready to be written as a `Status` body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code, also `Status.code`.
    pub code: u16,
    /// `Status.reason`, e.g. `NotFound`.
    pub reason: String,
    /// `Status.message`.
    pub message: String,
    /// `Status.details`, or `Null`.
    pub details: Value,
}

/// The kind of one field error, as in apimachinery's `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// `FieldValueForbidden`.
    Forbidden,
    /// `FieldValueInvalid`.
    Invalid,
    /// `FieldValueRequired`.
    Required,
}

/// One validation failure on one field (apimachinery `field.Error`).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// What went wrong.
    pub kind: FieldErrorKind,
    /// The field path, e.g. `spec.resources.requests.storage`.
    pub field: String,
    /// The explanation.
    pub detail: String,
    /// The rejected value, shown for `Invalid`.
    pub value: Option<Value>,
}

impl FieldError {
    /// A `Forbidden` error.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self {
            kind: FieldErrorKind::Forbidden,
            field: field.into(),
            detail: detail.into(),
            value: None,
        }
    }

    /// An `Invalid value` error.
    pub fn invalid(field: &str, value: Value, detail: &str) -> Self {
        Self {
            kind: FieldErrorKind::Invalid,
            field: field.into(),
            detail: detail.into(),
            value: Some(value),
        }
    }

    /// A `Required value` error.
    pub fn required(field: &str, detail: &str) -> Self {
        Self {
            kind: FieldErrorKind::Required,
            field: field.into(),
            detail: detail.into(),
            value: None,
        }
    }

    fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::Required => "FieldValueRequired",
        }
    }

    /// `ErrorBody()`: the message without the field path.
    fn body(&self) -> String {
        let (head, detail) = match self.kind {
            FieldErrorKind::Forbidden => ("Forbidden".to_string(), &self.detail),
            FieldErrorKind::Required => ("Required value".to_string(), &self.detail),
            FieldErrorKind::Invalid => {
                let value = match &self.value {
                    Some(Value::String(s)) => format!("{s:?}"),
                    Some(v) => v.to_string(),
                    None => "null".into(),
                };
                (format!("Invalid value: {value}"), &self.detail)
            }
        };
        if detail.is_empty() {
            head
        } else {
            format!("{head}: {detail}")
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

fn resource_details(ri: &ResourceInfo, name: &str) -> Value {
    let mut d = json!({ "name": name, "kind": ri.plural });
    if !ri.group.is_empty() {
        d["group"] = json!(ri.group);
    }
    d
}

impl ApiError {
    fn new(code: u16, reason: &str, message: String, details: Value) -> Self {
        Self {
            code,
            reason: reason.into(),
            message,
            details,
        }
    }

    /// `persistentvolumeclaims "x" not found`.
    pub fn not_found(ri: &ResourceInfo, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} {name:?} not found", ri.qualified()),
            resource_details(ri, name),
        )
    }

    /// `persistentvolumeclaims "x" already exists`.
    pub fn already_exists(ri: &ResourceInfo, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} {name:?} already exists", ri.qualified()),
            resource_details(ri, name),
        )
    }

    /// The optimistic-concurrency failure (registry/generic/registry/store.go `OptimisticLockErrorMsg`).
    pub fn conflict(ri: &ResourceInfo, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: {why}",
                ri.qualified()
            ),
            resource_details(ri, name),
        )
    }

    /// The stale-resourceVersion conflict.
    pub fn stale(ri: &ResourceInfo, name: &str) -> Self {
        Self::conflict(
            ri,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 `Invalid` with one cause per field error (`NewInvalid`).
    pub fn invalid(ri: &ResourceInfo, name: &str, errs: &[FieldError]) -> Self {
        let list = if errs.len() == 1 {
            errs[0].to_string()
        } else {
            format!(
                "[{}]",
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let causes: Vec<Value> = errs
            .iter()
            .map(|e| json!({ "reason": e.reason(), "message": e.body(), "field": e.field }))
            .collect();
        let mut details = json!({ "name": name, "kind": ri.kind, "causes": causes });
        if !ri.group.is_empty() {
            details["group"] = json!(ri.group);
        }
        Self::new(
            422,
            "Invalid",
            format!("{} {name:?} is invalid: {list}", ri.group_kind()),
            details,
        )
    }

    /// 400 `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into(), Value::Null)
    }

    /// 404 for a path that names no resource.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            Value::Null,
        )
    }

    /// 405 for a verb the resource does not support.
    pub fn method_not_allowed(verb: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({verb})"),
            Value::Null,
        )
    }

    /// 410 `Expired`, for a watch or continue token older than the retained history.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message.into(), Value::Null)
    }

    /// 403 `Forbidden` for writes into a terminating namespace (`NamespaceLifecycle` admission).
    pub fn namespace_terminating(ri: &ResourceInfo, name: &str, ns: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!(
                "{} {name:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                ri.qualified()
            ),
            resource_details(ri, name),
        )
    }

    /// An error with any code and reason (fault injection, eviction).
    pub fn custom(code: u16, reason: &str, message: impl Into<String>, details: Value) -> Self {
        Self::new(code, reason, message.into(), details)
    }

    /// The `Status` object.
    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !self.details.is_null() {
            s["details"] = self.details.clone();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::resources::builtin;

    #[test]
    fn not_found_message_matches_apiserver() {
        let pvc = builtin("", "persistentvolumeclaims").expect("pvc");
        assert_eq!(
            ApiError::not_found(&pvc, "x").message,
            "persistentvolumeclaims \"x\" not found"
        );
        let sts = builtin("apps", "statefulsets").expect("sts");
        assert_eq!(
            ApiError::not_found(&sts, "web").message,
            "statefulsets.apps \"web\" not found"
        );
    }

    #[test]
    fn invalid_lists_causes() {
        let sts = builtin("apps", "statefulsets").expect("sts");
        let e = ApiError::invalid(&sts, "web", &[FieldError::forbidden("spec", "nope")]);
        assert_eq!(
            e.message,
            "StatefulSet.apps \"web\" is invalid: spec: Forbidden: nope"
        );
        assert_eq!(
            e.status()["details"]["causes"][0]["reason"],
            "FieldValueForbidden"
        );
    }
}
