//! How one runbook command is carried out: a suite plugin run through kubectl's plugin lookup,
//! any other kubectl command run for real, an application step played as its definition says,
//! or refused because it cannot run as printed (a placeholder left in it, shell syntax, no play
//! declared). Pure: decided from the command text and the definition alone.

use super::definition::Definition;

/// What the runner does with one runbook command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `kubectl upgrade-NAME …`: the workspace's plugin `kubectl-upgrade-NAME`, through kubectl.
    Plugin {
        /// `migrate-pv`.
        plugin: String,
        /// Everything after `kubectl`, as printed.
        args: Vec<String>,
    },
    /// Any other `kubectl …`, against the simulated cluster.
    Kubectl {
        /// Everything after `kubectl`.
        args: Vec<String>,
    },
    /// An application step, played by the definition's play at this index.
    Play(usize),
    /// It cannot be run as printed.
    Refused(String),
}

/// Decides how a runbook command is run.
pub fn classify(def: &Definition, command: &str) -> Action {
    if let Some(p) = placeholder(command) {
        return Action::Refused(format!("placeholder {p} is left unfilled"));
    }
    let Some(words) = shlex::split(command) else {
        return Action::Refused("its quoting does not parse".into());
    };
    if let Some(w) = words.iter().find(|w| is_shell_syntax(w)) {
        return Action::Refused(format!(
            "it needs a shell ({w:?}); a runbook step must be one command"
        ));
    }
    match words.first().map(String::as_str) {
        None => Action::Refused("it is empty".into()),
        Some("kubectl") => {
            let args = words[1..].to_vec();
            match args.first().and_then(|w| w.strip_prefix("upgrade-")) {
                Some(plugin) if !plugin.is_empty() => Action::Plugin {
                    plugin: plugin.to_string(),
                    args,
                },
                _ => Action::Kubectl { args },
            }
        }
        Some(_) => match def
            .plays
            .iter()
            .enumerate()
            .filter(|(_, p)| super::definition::starts_with_words(&words, &p.step))
            .max_by_key(|(_, p)| p.step.split_whitespace().count())
        {
            Some((i, _)) => Action::Play(i),
            None => Action::Refused(format!(
                "`{}` is not kubectl and rehearsal {} declares no play for it",
                words[0], def.name
            )),
        },
    }
}

/// A placeholder the check left in a command: `<charm>`, `<new minio claim>`, `{namespace}`.
fn placeholder(command: &str) -> Option<String> {
    let bytes: Vec<char> = command.chars().collect();
    for (i, &c) in bytes.iter().enumerate() {
        let close = match c {
            '<' => '>',
            '{' => '}',
            _ => continue,
        };
        let rest: String = bytes[i + 1..].iter().collect();
        let Some(end) = rest.find(close) else {
            continue;
        };
        let inner = &rest[..end];
        let word_like = inner
            .chars()
            .next()
            .is_some_and(|f| f.is_ascii_alphabetic())
            && inner
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || " -_:".contains(ch));
        if word_like {
            return Some(format!("{c}{inner}{close}"));
        }
    }
    None
}

/// Words a shell would treat as more than an argument.
fn is_shell_syntax(word: &str) -> bool {
    matches!(
        word,
        "|" | "||" | "&&" | ";" | "&" | ">" | ">>" | "<" | "2>"
    ) || word.contains("$(")
        || word.contains('`')
        || (word.starts_with('$') && word.len() > 1)
}

/// Whether a plugin's help for the words of this command lists `--yes`: the runner answers a
/// prompt the way a user would, and without a terminal only `--yes` can answer.
pub fn help_offers_yes(help: &str) -> bool {
    help.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with("--yes") || l.starts_with("-y, --yes")
    })
}

/// Whether the arguments already answer prompts.
pub fn has_yes(args: &[String]) -> bool {
    args.iter()
        .any(|a| a == "--yes" || a == "-y" || a == "--yes=true")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rehearsal::definition::parse;

    fn def() -> Definition {
        let mut d = parse(
            "t.yaml",
            "title: t\nseed: s.md\nscenarios: [a.yaml]\nprofile: p\nnamespace: n\nto: '1'\nverdict: safe\ndata: {}\nkill: {step: kubectl upgrade-x y}\nplays:\n- {step: kubefate cluster update, does: helm upgrade}\n",
        )
        .expect("parses");
        d.name = "t".into();
        d
    }

    #[test]
    fn plugin_steps_keep_their_words() {
        assert_eq!(
            classify(
                &def(),
                "kubectl upgrade-migrate-pv adopt a b -n ns --for-statefulset s"
            ),
            Action::Plugin {
                plugin: "migrate-pv".into(),
                args: [
                    "upgrade-migrate-pv",
                    "adopt",
                    "a",
                    "b",
                    "-n",
                    "ns",
                    "--for-statefulset",
                    "s"
                ]
                .map(String::from)
                .to_vec()
            }
        );
    }

    #[test]
    fn json_in_quotes_is_an_argument_not_a_placeholder() {
        let a = classify(
            &def(),
            r#"kubectl patch fdb sample -n default --type merge -p '{"spec":{"version":"7.3.43"}}'"#,
        );
        assert_eq!(
            a,
            Action::Kubectl {
                args: [
                    "patch",
                    "fdb",
                    "sample",
                    "-n",
                    "default",
                    "--type",
                    "merge",
                    "-p",
                    r#"{"spec":{"version":"7.3.43"}}"#
                ]
                .map(String::from)
                .to_vec()
            }
        );
    }

    #[test]
    fn placeholders_are_refused() {
        for cmd in [
            "kubectl upgrade-migrate-pv copy a <new minio claim> -n kubeflow",
            "juju refresh <charm> --channel 1.7/stable",
            "kubectl get pods -n {namespace}",
        ] {
            assert!(
                matches!(classify(&def(), cmd), Action::Refused(r) if r.contains("placeholder")),
                "{cmd}"
            );
        }
    }

    #[test]
    fn shell_syntax_is_refused() {
        for cmd in [
            "kubectl get pv | grep minio",
            "kubectl delete pv $PV_NAME",
            "kubectl exec x -- sh -c 'cp -a /a /b' && sync",
        ] {
            assert!(
                matches!(classify(&def(), cmd), Action::Refused(r) if r.contains("shell")),
                "{cmd}"
            );
        }
    }

    #[test]
    fn application_steps_need_a_play() {
        assert_eq!(
            classify(&def(), "kubefate cluster update -f cluster.yaml"),
            Action::Play(0)
        );
        assert!(matches!(
            classify(&def(), "kubefate cluster delete fate-9999"),
            Action::Refused(r) if r.contains("declares no play")
        ));
    }

    #[test]
    fn yes_is_found_in_clap_help() {
        assert!(help_offers_yes(
            "Options:\n  -y, --yes\n          Do not ask\n"
        ));
        assert!(help_offers_yes("      --yes  Do not ask\n"));
        assert!(!help_offers_yes(
            "Options:\n      --dry-run\n  Say --yes to …\n"
        ));
    }
}
