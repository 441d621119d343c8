//! Runbook command templates: `{namespace}`, `{workload:mysql}` and friends, filled in with the
//! names the check resolved.

/// Placeholders a template may use; those with `:` take a component name.
pub const PLACEHOLDERS: &[&str] = &[
    "namespace",
    "from",
    "to",
    "instance",
    "profile",
    "workload:",
    "pod:",
    "ns:",
    "database:",
    "ignore-tables:",
    "claim:",
    "size:",
    "manifest:",
];

/// Splits a template into literal text and placeholders; `{{` and `}}` stand for braces.
fn pieces(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        literal.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            literal.push_str(&tail[..1]);
            rest = &tail[2..];
        } else if tail.starts_with('}') {
            return Err(format!(
                "unmatched '}}' in {template:?} (write '}}}}' for a brace)"
            ));
        } else {
            let end = tail.find('}').ok_or_else(|| {
                format!("unclosed '{{' in {template:?} (write '{{{{' for a brace)")
            })?;
            out.push(Piece::Text(std::mem::take(&mut literal)));
            out.push(Piece::Key(&tail[1..end]));
            rest = &tail[end + 1..];
        }
    }
    literal.push_str(rest);
    out.push(Piece::Text(literal));
    Ok(out)
}

enum Piece<'a> {
    Text(String),
    Key(&'a str),
}

/// Checks that every placeholder is one [`PLACEHOLDERS`] knows.
pub fn check(template: &str) -> Result<(), String> {
    for piece in pieces(template)? {
        let Piece::Key(key) = piece else { continue };
        let known = PLACEHOLDERS.iter().any(|p| {
            p.strip_suffix(':').map_or(*p == key, |prefix| {
                key.strip_prefix(prefix)
                    .and_then(|r| r.strip_prefix(':'))
                    .is_some_and(|arg| !arg.is_empty())
            })
        });
        if !known {
            return Err(format!("unknown placeholder {{{key}}} in {template:?}"));
        }
    }
    Ok(())
}

/// Fills in a checked template; `resolve` gets the key and the component argument, if any.
/// A template that does not parse is returned as written.
pub fn render(template: &str, resolve: impl Fn(&str, Option<&str>) -> String) -> String {
    let Ok(pieces) = pieces(template) else {
        return template.to_string();
    };
    pieces
        .into_iter()
        .map(|piece| match piece {
            Piece::Text(text) => text,
            Piece::Key(key) => match key.split_once(':') {
                Some((name, arg)) => resolve(name, Some(arg)),
                None => resolve(key, None),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_placeholders() {
        assert!(check("kubectl upgrade-backup -n {namespace} {workload:mysql}").is_ok());
        assert!(check("{nope}").is_err());
        assert!(check("{workload:}").is_err());
        assert!(check("{namespace").is_err());
        assert!(check("a } b").is_err());
        assert!(check("-p '{{\"v\":\"{to}\"}}'").is_ok());
    }

    #[test]
    fn renders_with_arguments() {
        let out = render("x -n {namespace} {workload:mysql}", |k, a| {
            format!("<{k}|{}>", a.unwrap_or(""))
        });
        assert_eq!(out, "x -n <namespace|> <workload|mysql>");
        let out = render("-p '{{\"v\":\"{to}\"}}'", |_, _| "7.3.1".into());
        assert_eq!(out, "-p '{\"v\":\"7.3.1\"}'");
    }
}
