//! Reading an application's running version through a profile's `versionSources`, from
//! whatever holds the objects (a live snapshot, files, a recorded baseline): the caller answers
//! the few questions the sources ask, the order and the parsing live here once.

use std::collections::BTreeMap;

use super::{Profile, VersionSource};
use crate::version::{self, Version};

/// What the version sources need to know about the application's objects.
pub trait VersionInputs {
    /// A top-level field of a KubeFATE `cluster.yaml`, when one was given.
    fn cluster_file_field(&self, field: &str) -> Option<String>;
    /// A dotted field of the first custom resource of this kind that has it.
    fn custom_field(&self, api_version: &str, kind: &str, field: &str) -> Option<String>;
    /// Images of a component's workloads (of one container when named).
    fn images(&self, component: &str, container: Option<&str>) -> Vec<String>;
    /// Labels of a component's workloads.
    fn labels(&self, component: &str) -> Vec<BTreeMap<String, String>>;
}

/// The running version from the first source that has one, or the sources that were tried
/// (each named once) when none had.
pub fn detect_version(profile: &Profile, inputs: &impl VersionInputs) -> Result<Version, String> {
    let mut tried: Vec<String> = Vec::new();
    for source in &profile.version_sources {
        let (what, found) = match source {
            VersionSource::ClusterFile { field } => (
                format!("cluster file field {field}"),
                inputs.cluster_file_field(field),
            ),
            VersionSource::CustomResource {
                api_version,
                kind,
                field,
            } => (
                format!("{kind} field {field}"),
                inputs.custom_field(api_version, kind, field),
            ),
            VersionSource::Image {
                component,
                container,
            } => (
                format!("image tag of {component}"),
                inputs
                    .images(component, container.as_deref())
                    .into_iter()
                    .map(|image| version::split_image(&image).1.to_string())
                    .find(|tag| Version::parse(tag).is_ok()),
            ),
            VersionSource::Label { component, key } => (
                format!("label {key} of {component}"),
                inputs
                    .labels(component)
                    .into_iter()
                    .find_map(|labels| labels.get(key).cloned()),
            ),
            VersionSource::HelmChart { component, chart } => (
                format!("helm.sh/chart label of {component}"),
                inputs.labels(component).into_iter().find_map(|labels| {
                    labels
                        .get("helm.sh/chart")
                        .and_then(|c| c.strip_prefix(&format!("{chart}-")))
                        .map(str::to_string)
                }),
            ),
        };
        if let Some(v) = found.and_then(|text| Version::parse(&text).ok()) {
            return Ok(v);
        }
        if !tried.contains(&what) {
            tried.push(what);
        }
    }
    Err(format!("found none of: {}", tried.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed {
        images: Vec<String>,
        crd: Option<String>,
    }

    impl VersionInputs for Fixed {
        fn cluster_file_field(&self, _: &str) -> Option<String> {
            None
        }
        fn custom_field(&self, _: &str, _: &str, _: &str) -> Option<String> {
            self.crd.clone()
        }
        fn images(&self, _: &str, _: Option<&str>) -> Vec<String> {
            self.images.clone()
        }
        fn labels(&self, _: &str) -> Vec<BTreeMap<String, String>> {
            Vec::new()
        }
    }

    #[test]
    fn the_first_source_with_a_version_wins() {
        let fate = crate::profile::builtin("fate").expect("fate");
        let inputs = Fixed {
            images: vec![
                "busybox:latest".into(),
                "federatedai/python:1.8.0-release".into(),
            ],
            crd: None,
        };
        assert_eq!(
            detect_version(&fate, &inputs).expect("version").canonical(),
            "1.8.0"
        );
        let fdb = crate::profile::builtin("foundationdb").expect("fdb");
        let inputs = Fixed {
            images: vec!["foundationdb/foundationdb:7.1.33".into()],
            crd: Some("7.3.1".into()),
        };
        assert_eq!(detect_version(&fdb, &inputs).expect("version").raw, "7.3.1");
    }

    #[test]
    fn nothing_found_names_each_source_once() {
        let fate = crate::profile::builtin("fate").expect("fate");
        let none = Fixed {
            images: Vec::new(),
            crd: None,
        };
        assert_eq!(
            detect_version(&fate, &none).unwrap_err(),
            "found none of: cluster file field chartVersion, image tag of python"
        );
    }
}
