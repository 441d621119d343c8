//! The resource types the simulated API server serves: the built-in kinds this suite needs and
//! the ones CustomResourceDefinitions add.

use serde_json::Value;

/// One served resource (one group, version and plural).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group, empty for the core group.
    pub group: String,
    /// Served version.
    pub version: String,
    /// Plural resource name used in paths.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Object kind.
    pub kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names kubectl accepts.
    pub short_names: Vec<String>,
    /// Whether a `status` subresource exists (status is then ignored on main-resource writes).
    pub status: bool,
    /// Whether a `scale` subresource exists.
    pub scale: bool,
    /// Categories such as `all`.
    pub categories: Vec<String>,
    /// A CRD version's `additionalPrinterColumns`: name, type and JSONPath.
    pub printer_columns: Vec<(String, String, String)>,
}

impl ResourceInfo {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Storage key: one per group and plural, whatever the version.
    pub fn key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    /// `deployments.apps`, or `pods` for the core group (schema.GroupResource.String()).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Deployment.apps`, or `Pod` (schema.GroupKind.String()).
    pub fn group_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn ri(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
    scale: bool,
) -> ResourceInfo {
    let all = matches!(
        plural,
        "pods"
            | "services"
            | "deployments"
            | "replicasets"
            | "statefulsets"
            | "daemonsets"
            | "jobs"
    );
    ResourceInfo {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        status,
        scale,
        categories: if all { vec!["all".into()] } else { vec![] },
        printer_columns: vec![],
    }
}

/// Every built-in resource.
pub fn builtins() -> Vec<ResourceInfo> {
    vec![
        ri(
            "",
            "v1",
            "namespaces",
            "Namespace",
            false,
            &["ns"],
            true,
            false,
        ),
        ri("", "v1", "nodes", "Node", false, &["no"], true, false),
        ri("", "v1", "pods", "Pod", true, &["po"], true, false),
        ri(
            "",
            "v1",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            true,
            &["pvc"],
            true,
            false,
        ),
        ri(
            "",
            "v1",
            "persistentvolumes",
            "PersistentVolume",
            false,
            &["pv"],
            true,
            false,
        ),
        ri(
            "",
            "v1",
            "configmaps",
            "ConfigMap",
            true,
            &["cm"],
            false,
            false,
        ),
        ri("", "v1", "secrets", "Secret", true, &[], false, false),
        ri("", "v1", "services", "Service", true, &["svc"], true, false),
        ri(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            false,
            false,
        ),
        ri("", "v1", "events", "Event", true, &["ev"], false, false),
        ri(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            true,
            &["deploy"],
            true,
            true,
        ),
        ri(
            "apps",
            "v1",
            "replicasets",
            "ReplicaSet",
            true,
            &["rs"],
            true,
            true,
        ),
        ri(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            true,
            &["sts"],
            true,
            true,
        ),
        ri(
            "apps",
            "v1",
            "daemonsets",
            "DaemonSet",
            true,
            &["ds"],
            true,
            false,
        ),
        ri(
            "apps",
            "v1",
            "controllerrevisions",
            "ControllerRevision",
            true,
            &[],
            false,
            false,
        ),
        ri("batch", "v1", "jobs", "Job", true, &[], true, false),
        ri(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
            &["pdb"],
            true,
            false,
        ),
        ri(
            "storage.k8s.io",
            "v1",
            "storageclasses",
            "StorageClass",
            false,
            &["sc"],
            false,
            false,
        ),
        ri(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            true,
            false,
        ),
    ]
}

/// A built-in resource by group and plural.
pub fn builtin(group: &str, plural: &str) -> Option<ResourceInfo> {
    builtins()
        .into_iter()
        .find(|r| r.group == group && r.plural == plural)
}

/// The resources one CustomResourceDefinition serves (one per served version).
pub fn from_crd(crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let str_of = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let plural = str_of(&names["plural"]);
    let kind = str_of(&names["kind"]);
    let singular = match names["singular"].as_str() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => kind.to_lowercase(),
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    spec["versions"]
        .as_array()
        .map(|vs| vs.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .map(|v| ResourceInfo {
            group: str_of(&spec["group"]),
            version: str_of(&v["name"]),
            plural: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            namespaced: spec["scope"].as_str() != Some("Cluster"),
            short_names: strings(&names["shortNames"]),
            status: v["subresources"]["status"].is_object(),
            scale: v["subresources"]["scale"].is_object(),
            categories: strings(&names["categories"]),
            printer_columns: v["additionalPrinterColumns"]
                .as_array()
                .map(|cols| {
                    cols.iter()
                        .map(|c| {
                            (
                                str_of(&c["name"]),
                                str_of(&c["type"]),
                                str_of(&c["jsonPath"]),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// The standard verbs of a resource.
pub fn verbs() -> Vec<&'static str> {
    vec![
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crd_versions_become_resources() {
        let crd = json!({"spec": {"group": "apps.foundationdb.org", "scope": "Namespaced",
            "names": {"plural": "foundationdbclusters", "kind": "FoundationDBCluster", "shortNames": ["fdb"]},
            "versions": [{"name": "v1beta2", "served": true, "storage": true, "subresources": {"status": {}}}]}});
        let r = from_crd(&crd);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].api_version(), "apps.foundationdb.org/v1beta2");
        assert!(r[0].status && !r[0].scale);
        assert_eq!(r[0].singular, "foundationdbcluster");
    }
}
