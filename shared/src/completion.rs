//! Shell completion, the same for every plugin.
//!
//! Two ways in, both answered before the plugin parses its arguments:
//! - `kubectl-upgrade-NAME completion bash|zsh|fish` prints a completion script for the
//!   executable's own name (for those who run it directly);
//! - `kubectl-upgrade-NAME __complete ARG… WORD` answers one completion request in the format
//!   kubectl (1.26 and later) expects from a plugin's `kubectl_complete-upgrade_NAME`
//!   executable: one candidate a line (`value<TAB>description`), then `:DIRECTIVE` on a line of
//!   its own, the Cobra shell-completion directive. kubectl runs that executable with the words
//!   after the plugin's name, the last one being the word under the cursor (often empty).
//!
//! Candidates come from the plugin's own clap definition (subcommands, flags, possible values,
//! file paths), so completion never drifts from what the parser accepts.

use std::ffi::OsString;
use std::io::Write;

/// Cobra's `ShellCompDirectiveNoFileComp`: the shell adds no file names of its own; file
/// arguments are already completed by the candidates.
const NO_FILE_COMPLETION: u32 = 4;

/// The shells a completion script can be printed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    fn parse(text: &str) -> Option<Shell> {
        match text {
            "bash" => Some(Shell::Bash),
            "zsh" => Some(Shell::Zsh),
            "fish" => Some(Shell::Fish),
            _ => None,
        }
    }
}

/// What [`intercept`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Intercepted {
    /// The arguments are not a completion request: parse them as usual.
    No,
    /// Answered; exit with this code (0 done, 2 bad input).
    Exit(u8),
}

/// Answers `completion SHELL` and `__complete …` for the plugin whose command `cmd` builds,
/// writing to `out`. `args` are the process arguments, the executable first.
pub fn intercept(cmd: clap::Command, args: &[OsString], out: &mut dyn Write) -> Intercepted {
    let first = args.get(1).and_then(|a| a.to_str());
    match first {
        Some("completion") => {
            let bin = cmd.get_name().to_string();
            let shell = args.get(2).and_then(|a| a.to_str());
            match (shell.and_then(Shell::parse), args.len()) {
                (Some(shell), 3) => {
                    script(cmd, shell, &bin, out);
                    Intercepted::Exit(0)
                }
                _ => {
                    eprintln!(
                        "error: usage: {bin} completion bash|zsh|fish (got {})",
                        shell.map_or("nothing".to_string(), |s| format!("'{s}'"))
                    );
                    Intercepted::Exit(2)
                }
            }
        }
        Some("__complete") => {
            let words: Vec<OsString> = args[2..].to_vec();
            let text = answer(cmd, words);
            let _ = out.write_all(text.as_bytes());
            Intercepted::Exit(0)
        }
        _ => Intercepted::No,
    }
}

/// Prints the completion script of `shell` for the executable `bin`.
pub fn script(mut cmd: clap::Command, shell: Shell, bin: &str, out: &mut dyn Write) {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, bin, out);
}

/// One answer in kubectl's plugin-completion format for `words` (the words after the plugin
/// name, the last being completed; none means an empty word).
pub fn answer(mut cmd: clap::Command, words: Vec<OsString>) -> String {
    let mut args = vec![OsString::from(cmd.get_name().to_string())];
    args.extend(words);
    if args.len() == 1 {
        args.push(OsString::new());
    }
    let index = args.len() - 1;
    let cwd = std::env::current_dir().ok();
    let candidates =
        clap_complete::engine::complete(&mut cmd, args, index, cwd.as_deref()).unwrap_or_default();
    let mut text = String::new();
    for candidate in candidates.iter().filter(|c| !c.is_hide_set()) {
        text.push_str(&candidate.get_value().to_string_lossy());
        if let Some(help) = candidate.get_help() {
            let help = help.to_string();
            let first = help.lines().next().unwrap_or_default();
            if !first.is_empty() {
                text.push('\t');
                text.push_str(first);
            }
        }
        text.push('\n');
    }
    text.push_str(&format!(":{NO_FILE_COMPLETION}\n"));
    text
}

/// Handles a completion request from the process arguments, for a plugin's `main`: returns
/// the exit code when the arguments were one, `None` when the plugin should run as usual.
pub fn handle<A: clap::CommandFactory>() -> Option<std::process::ExitCode> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let mut stdout = std::io::stdout().lock();
    match intercept(A::command(), &args, &mut stdout) {
        Intercepted::No => None,
        Intercepted::Exit(code) => {
            let _ = stdout.flush();
            Some(std::process::ExitCode::from(code))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn demo() -> Command {
        Command::new("kubectl-upgrade-demo")
            .subcommand(
                Command::new("adopt")
                    .about("Hand a volume to a new claim")
                    .arg(Arg::new("yes").long("yes").action(clap::ArgAction::SetTrue))
                    .arg(
                        Arg::new("output")
                            .short('o')
                            .long("output")
                            .value_parser(["table", "json", "yaml"]),
                    ),
            )
            .subcommand(Command::new("status").about("Show what was done"))
    }

    fn os(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn subcommands_with_descriptions_then_the_directive() {
        let text = answer(demo(), os(&[""]));
        assert!(
            text.contains("adopt\tHand a volume to a new claim\n"),
            "{text}"
        );
        assert!(text.contains("status\tShow what was done\n"), "{text}");
        assert!(text.ends_with(":4\n"), "{text}");
    }

    #[test]
    fn flags_and_their_values() {
        let text = answer(demo(), os(&["adopt", "--y"]));
        assert!(text.starts_with("--yes"), "{text}");
        let text = answer(demo(), os(&["adopt", "-o", ""]));
        let values: Vec<&str> = text.lines().collect();
        assert_eq!(values, ["table", "json", "yaml", ":4"]);
    }

    #[test]
    fn no_words_completes_an_empty_word() {
        assert_eq!(answer(demo(), vec![]), answer(demo(), os(&[""])));
    }

    #[test]
    fn completion_scripts_name_the_executable() {
        for shell in ["bash", "zsh", "fish"] {
            let mut out = Vec::new();
            let got = intercept(
                demo(),
                &os(&["kubectl-upgrade-demo", "completion", shell]),
                &mut out,
            );
            assert_eq!(got, Intercepted::Exit(0));
            let text = String::from_utf8(out).expect("utf-8 script");
            assert!(text.contains("kubectl-upgrade-demo"), "{shell}: {text}");
        }
    }

    #[test]
    fn an_unknown_shell_is_bad_input_and_prints_nothing() {
        let mut out = Vec::new();
        let got = intercept(
            demo(),
            &os(&["kubectl-upgrade-demo", "completion", "tcsh"]),
            &mut out,
        );
        assert_eq!(got, Intercepted::Exit(2));
        assert!(out.is_empty());
    }

    #[test]
    fn other_arguments_are_left_to_the_plugin() {
        let mut out = Vec::new();
        let got = intercept(demo(), &os(&["kubectl-upgrade-demo", "status"]), &mut out);
        assert_eq!(got, Intercepted::No);
        assert!(out.is_empty());
    }
}
