//! YAML input: one-line error messages with a line number, and Kubernetes object streams
//! (multi-document files, `kind: List`) as `kubectl get -o yaml`, `helm template` and
//! `kustomize build` write them.

use std::path::Path;

use anyhow::Context as _;

/// The parser's message on one line, without the source snippet.
pub fn one_line(err: &serde_saphyr::Error) -> String {
    let text = err.without_snippet().to_string();
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid YAML");
    first.to_string()
}

/// Reads every object of a YAML or JSON file, flattening `kind: List` documents.
/// Errors name the file and line: `cluster.yaml:12: …`.
pub fn read_objects(path: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_objects(&path.display().to_string(), &text)
}

/// Parses a stream of objects; `origin` names it in errors.
pub fn parse_objects(origin: &str, text: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text).map_err(|e| {
        let line = e.location().map_or(0, |l| l.line());
        anyhow::anyhow!("{origin}:{line}: {}", one_line(&e))
    })?;
    let mut out = Vec::new();
    for doc in docs {
        flatten(doc, &mut out);
    }
    Ok(out)
}

fn flatten(doc: serde_json::Value, out: &mut Vec<serde_json::Value>) {
    match doc {
        serde_json::Value::Null => {}
        serde_json::Value::Object(ref map)
            if map
                .get("kind")
                .and_then(|k| k.as_str())
                .is_some_and(|k| k == "List" || k.ends_with("List"))
                && map.get("items").is_some_and(|i| i.is_array()) =>
        {
            if let Some(serde_json::Value::Array(items)) = doc.get("items").cloned() {
                for item in items {
                    flatten(item, out);
                }
            }
        }
        other => out.push(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_documents_flatten() {
        let text = "kind: List\nitems:\n- kind: Pod\n- kind: Service\n---\nkind: Deployment\n---\n";
        let objects = parse_objects("x.yaml", text).unwrap();
        let kinds: Vec<&str> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["Pod", "Service", "Deployment"]);
    }

    #[test]
    fn errors_name_file_and_line_on_one_line() {
        let err = parse_objects("bad.yaml", "a: 1\nb: [1, 2\nc: 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bad.yaml:"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let line: u64 = err.split(':').nth(1).unwrap().parse().unwrap();
        assert!(line >= 2, "{err}");
    }
}
