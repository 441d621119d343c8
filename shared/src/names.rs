//! Kubernetes name rules and label selectors. Names are checked before they reach a command
//! line or a shell, so a hostile object name cannot become an argument of its own.

use std::collections::BTreeMap;

/// RFC 1123 label: lower-case alphanumerics and `-`, starting and ending alphanumeric, ≤ 63.
/// (Namespaces, Services and most names in the Kubernetes API conventions.)
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// RFC 1123 subdomain: dot-separated labels, ≤ 253 (claims, volumes, workloads).
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// Checks a name given on the command line, saying which kind of object it should name.
pub fn check_name(kind: &str, name: &str) -> Result<(), String> {
    if is_dns_subdomain(name) {
        Ok(())
    } else {
        Err(format!(
            "invalid {kind} name {name:?}: must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// Parses the label selector syntax kubectl takes with `-l` (`a=b,c!=d,e in (f,g),!h,i`).
pub fn parse_selector(text: &str) -> Result<Vec<Requirement>, String> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    let bad = |p: &str| format!("invalid label selector {text:?} near {p:?}");
    let mut reqs = Vec::new();
    for part in parts.iter().map(|p| p.trim()) {
        if part.is_empty() {
            if text.trim().is_empty() {
                continue;
            }
            return Err(bad(part));
        }
        let set = |p: &str, op: &str| -> Option<(String, Vec<String>)> {
            let (key, rest) = p.split_once(op)?;
            let values = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
            Some((
                key.trim().to_string(),
                values.split(',').map(|v| v.trim().to_string()).collect(),
            ))
        };
        let req = if let Some((k, v)) = set(part, " notin ") {
            Requirement::NotIn(k, v)
        } else if let Some((k, v)) = set(part, " in ") {
            Requirement::In(k, v)
        } else if let Some((k, v)) = part.split_once("!=") {
            Requirement::NotEquals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            Requirement::Equals(k.trim().into(), v.trim().into())
        } else if let Some(k) = part.strip_prefix('!') {
            Requirement::NotExists(k.trim().into())
        } else {
            Requirement::Exists(part.into())
        };
        let key = match &req {
            Requirement::Equals(k, _)
            | Requirement::NotEquals(k, _)
            | Requirement::In(k, _)
            | Requirement::NotIn(k, _)
            | Requirement::Exists(k)
            | Requirement::NotExists(k) => k,
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(bad(part));
        }
        reqs.push(req);
    }
    Ok(reqs)
}

/// True when the labels satisfy every requirement.
pub fn selector_matches(reqs: &[Requirement], labels: Option<&BTreeMap<String, String>>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k));
    reqs.iter().all(|r| match r {
        Requirement::Equals(k, v) => get(k) == Some(v),
        Requirement::NotEquals(k, v) => get(k) != Some(v),
        Requirement::In(k, vs) => get(k).is_some_and(|x| vs.contains(x)),
        Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.contains(x)),
        Requirement::Exists(k) => get(k).is_some(),
        Requirement::NotExists(k) => get(k).is_none(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rfc_1123() {
        assert!(is_dns_label("mysql-data"));
        assert!(!is_dns_label("MySQL"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_subdomain("pvc-0865a743.example"));
        assert!(!is_dns_subdomain("a;rm -rf /"));
        assert!(!is_dns_subdomain("a b"));
        assert!(check_name("claim", "$(id)").is_err());
    }

    #[test]
    fn selectors_parse_and_match() {
        let reqs = parse_selector("fateMoudle=mysql,tier in (db, cache),!legacy,owner").unwrap();
        assert_eq!(reqs.len(), 4);
        let labels: BTreeMap<String, String> = [
            ("fateMoudle", "mysql"),
            ("tier", "db"),
            ("owner", "kubefate"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert!(selector_matches(&reqs, Some(&labels)));
        let mut other = labels.clone();
        other.insert("legacy".into(), "1".into());
        assert!(!selector_matches(&reqs, Some(&other)));
        assert!(!selector_matches(&reqs, None));
        assert!(parse_selector("a=b,,c").is_err());
        assert!(parse_selector("a b").is_err());
        assert_eq!(parse_selector("").unwrap(), vec![]);
    }
}
