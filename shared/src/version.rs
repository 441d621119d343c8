//! Lenient version parsing: image tags and chart versions as people write them.
//!
//! `v1.7.2`, `1.7.2-release`, `8.0.28` and `7.1.33` are exact versions; `8`, `8.0`, `latest` and
//! a missing tag are *floating*: they name whatever the registry serves today, which is how a
//! MySQL 8.0.3x server ends up behind a chart that later pins `8.0.28`.

use std::cmp::Ordering;
use std::fmt;

/// A version as written, with the parts that were given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    /// The text as it was written (kept for messages).
    pub raw: String,
    pub major: u64,
    pub minor: Option<u64>,
    pub patch: Option<u64>,
    /// Anything after the numbers (`release` in `1.7.2-release`), without the separator.
    pub suffix: Option<String>,
}

/// What a tag or version string turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    /// Numbers were given down to the patch level.
    Exact(Version),
    /// A partial version (`8`, `8.0`): it floats over newer minor or patch releases.
    Partial(Version),
    /// `latest`, an empty tag, or a name that carries no version at all.
    Floating(String),
}

/// The reason a string is not a version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a version (expected something like v1.7.2, 1.7.2-release or 8.0.28)")]
pub struct ParseVersionError {
    pub input: String,
}

impl Version {
    /// Parses `v1.7.2`, `1.7.2-release`, `8.0.28`, `8`, `release-1.4` is refused.
    pub fn parse(input: &str) -> Result<Version, ParseVersionError> {
        let err = || ParseVersionError {
            input: input.to_string(),
        };
        let text = input.trim();
        let text = text
            .strip_prefix('v')
            .or_else(|| text.strip_prefix('V'))
            .unwrap_or(text);
        let end = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (numbers, rest) = text.split_at(end);
        if numbers.is_empty() || numbers.ends_with('.') || numbers.starts_with('.') {
            return Err(err());
        }
        let parts: Vec<&str> = numbers.split('.').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(err());
        }
        let num = |s: &str| s.parse::<u64>().map_err(|_| err());
        let suffix = match rest {
            "" => None,
            r if r.starts_with(['-', '+', '_']) && r.len() > 1 => Some(r[1..].to_string()),
            _ => return Err(err()),
        };
        Ok(Version {
            raw: input.trim().to_string(),
            major: num(parts[0])?,
            minor: parts.get(1).map(|p| num(p)).transpose()?,
            patch: parts.get(2).map(|p| num(p)).transpose()?,
            suffix,
        })
    }

    /// True when minor and patch were both given.
    pub fn is_exact(&self) -> bool {
        self.minor.is_some() && self.patch.is_some()
    }

    /// The version as semver, missing parts read as zero (`1.7` → `1.7.0`).
    pub fn to_semver(&self) -> semver::Version {
        semver::Version::new(self.major, self.minor.unwrap_or(0), self.patch.unwrap_or(0))
    }

    /// True when `self` names `other` or a release `other` floats over: `1.7` covers `1.7.2`,
    /// `v1.7.2` covers `1.7.2-release`.
    pub fn covers(&self, other: &Version) -> bool {
        self.major == other.major
            && self.minor.is_none_or(|m| Some(m) == other.minor)
            && self.patch.is_none_or(|p| Some(p) == other.patch)
    }

    /// Compares the numbers only; a missing part counts as zero.
    pub fn cmp_numbers(&self, other: &Version) -> Ordering {
        self.to_semver().cmp(&other.to_semver())
    }

    /// The canonical form used in messages and commands: `v` + the numbers given.
    pub fn canonical(&self) -> String {
        let mut s = format!("{}", self.major);
        if let Some(m) = self.minor {
            s.push_str(&format!(".{m}"));
        }
        if let Some(p) = self.patch {
            s.push_str(&format!(".{p}"));
        }
        s
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Tag {
    /// Classifies an image tag (the part after `:`; pass `""` when the image has none).
    pub fn parse(tag: &str) -> Tag {
        let tag = tag.trim();
        if tag.is_empty() || tag.eq_ignore_ascii_case("latest") {
            return Tag::Floating(if tag.is_empty() {
                "latest".into()
            } else {
                tag.into()
            });
        }
        match Version::parse(tag) {
            Ok(v) if v.is_exact() => Tag::Exact(v),
            Ok(v) => Tag::Partial(v),
            Err(_) => Tag::Floating(tag.to_string()),
        }
    }

    /// True for tags that resolve to different releases over time.
    pub fn is_floating(&self) -> bool {
        !matches!(self, Tag::Exact(_))
    }
}

/// Splits an image reference into repository and tag, ignoring a digest and a registry port:
/// `registry:5000/mysql:8@sha256:…` → (`registry:5000/mysql`, `8`).
pub fn split_image(image: &str) -> (&str, &str) {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].rfind(':') {
        Some(i) => (
            &without_digest[..last_slash + i],
            &without_digest[last_slash + i + 1..],
        ),
        None => (without_digest, ""),
    }
}

/// The version an image tag names: the tag itself when it reads as a version (`8.0.28`,
/// `1.7.2-release`), else the text after a tag's last `release-` (Arrikto tags Rok's images
/// `release-<line>-l0-release-<version>`, e.g. `release-1.4-l0-release-1.4.4`).
pub fn tag_version(tag: &str) -> Option<Version> {
    Version::parse(tag).ok().or_else(|| {
        let (_, after) = tag.rsplit_once("release-")?;
        Version::parse(after).ok()
    })
}

/// The last path element of an image repository (`docker.io/library/mysql` → `mysql`).
pub fn image_name(repository: &str) -> &str {
    repository.rsplit('/').next().unwrap_or(repository)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_people_write() {
        let v = Version::parse("v1.7.2").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (1, Some(7), Some(2)));
        let v = Version::parse("1.7.2-release").unwrap();
        assert_eq!(v.suffix.as_deref(), Some("release"));
        assert_eq!(v.to_semver(), semver::Version::new(1, 7, 2));
        assert_eq!(Version::parse("8.0.28").unwrap().patch, Some(28));
        assert_eq!(Version::parse("7.1.33").unwrap().minor, Some(1));
        assert_eq!(Version::parse("V2").unwrap().minor, None);
    }

    #[test]
    fn refuses_what_is_not_a_version() {
        for bad in [
            "",
            "v",
            "latest",
            "1..2",
            "1.2.3.4",
            "1.2x",
            ".1",
            "1.",
            "release-1.4",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn tags_name_their_version() {
        let numbers = |t: &str| tag_version(t).map(|v| (v.major, v.minor, v.patch));
        assert_eq!(numbers("8.0.28"), Some((8, Some(0), Some(28))));
        assert_eq!(numbers("1.7.2-release"), Some((1, Some(7), Some(2))));
        assert_eq!(
            numbers("release-1.4-l0-release-1.4.4"),
            Some((1, Some(4), Some(4)))
        );
        assert_eq!(numbers("latest"), None);
        assert_eq!(numbers("release-"), None);
    }

    #[test]
    fn classifies_tags() {
        assert!(matches!(Tag::parse("8.0.28"), Tag::Exact(_)));
        assert!(matches!(Tag::parse("1.7.2-release"), Tag::Exact(_)));
        assert!(matches!(Tag::parse("8"), Tag::Partial(_)));
        assert!(matches!(Tag::parse("8.0"), Tag::Partial(_)));
        assert_eq!(Tag::parse(""), Tag::Floating("latest".into()));
        assert_eq!(Tag::parse("latest"), Tag::Floating("latest".into()));
        assert!(matches!(Tag::parse("stable"), Tag::Floating(_)));
        assert!(Tag::parse("8").is_floating());
        assert!(!Tag::parse("8.0.28").is_floating());
    }

    #[test]
    fn partial_versions_cover_their_releases() {
        let line = Version::parse("7.1").unwrap();
        assert!(line.covers(&Version::parse("7.1.33").unwrap()));
        assert!(!line.covers(&Version::parse("7.3.1").unwrap()));
        let exact = Version::parse("v1.7.2").unwrap();
        assert!(exact.covers(&Version::parse("1.7.2-release").unwrap()));
        assert!(!exact.covers(&Version::parse("1.7").unwrap()));
    }

    #[test]
    fn splits_images() {
        assert_eq!(split_image("mysql:8"), ("mysql", "8"));
        assert_eq!(split_image("mysql"), ("mysql", ""));
        assert_eq!(
            split_image("registry:5000/library/mysql:8.0.28@sha256:abc"),
            ("registry:5000/library/mysql", "8.0.28")
        );
        assert_eq!(
            split_image("registry:5000/mysql"),
            ("registry:5000/mysql", "")
        );
        assert_eq!(image_name("docker.io/library/mysql"), "mysql");
    }
}
