//! The profiles that ship inside every binary.

use super::{Profile, ProfileError};

/// (name, YAML) of each built-in profile.
pub const BUILTIN: &[(&str, &str)] = &[
    ("fate", include_str!("../../profiles/fate.yaml")),
    (
        "foundationdb",
        include_str!("../../profiles/foundationdb.yaml"),
    ),
    ("kubeflow", include_str!("../../profiles/kubeflow.yaml")),
    ("rok", include_str!("../../profiles/rok.yaml")),
];

/// Names of the built-in profiles.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(name, _)| *name).collect()
}

/// Loads a built-in profile by name.
pub fn builtin(name: &str) -> Result<Profile, ProfileError> {
    let (_, text) =
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ProfileError::Unknown {
                name: name.to_string(),
                known: builtin_names().join(", "),
            })?;
    Profile::from_yaml(&format!("builtin:{name}"), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_loads_under_its_own_name() {
        for (name, _) in BUILTIN {
            let profile = builtin(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&profile.name, name);
        }
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let err = builtin("nope").unwrap_err().to_string();
        assert!(err.contains("fate, foundationdb, kubeflow, rok"), "{err}");
    }
}
