//! Asking before destructive steps: `--yes` answers for the user, and without a terminal there
//! is nobody to ask, so the command stops instead of guessing.

use std::io::IsTerminal;

/// Asks `question`; `yes` skips the prompt. Without a terminal on stdin and stderr, refuses
/// (exit 1, nothing changed) with a message that says to pass `--yes`.
pub fn confirm(question: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(crate::exit::refused(format!(
            "not asking without a terminal: {question} Pass --yes to go ahead, or --dry-run to see the plan only"
        )));
    }
    Ok(dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact()?)
}
