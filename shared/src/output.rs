//! Output as kubectl prints it: `-o table|json|yaml`, aligned columns, and colour only where a
//! person is reading (a terminal, `NO_COLOR` unset, `--color` not `never`).

use std::io::{IsTerminal, Write};

use owo_colors::OwoColorize;
use serde::Serialize;

/// The `-o/--output` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Human-readable columns and a runbook.
    #[default]
    Table,
    /// One JSON document, for scripts.
    Json,
    /// One YAML document, for scripts.
    Yaml,
}

/// The `--color` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when standard output is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    /// Colour even into a pipe (still never with `NO_COLOR`).
    Always,
    /// Never colour.
    Never,
}

/// Output flags every plugin takes.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table, global = true)]
    pub format: Format,
    /// When to use colours. `NO_COLOR` in the environment always turns them off.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN", global = true)]
    pub color: ColorChoice,
}

impl OutputArgs {
    /// The styles for standard output under these flags and the real environment.
    pub fn styles(&self) -> Styles {
        Styles::new(color_enabled(
            self.color,
            std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            std::io::stdout().is_terminal(),
        ))
    }
}

/// Decides whether to colour: `NO_COLOR` wins over everything, `auto` follows the terminal.
pub fn color_enabled(choice: ColorChoice, no_color: bool, terminal: bool) -> bool {
    !no_color
        && match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal,
        }
}

/// Text styles that are plain unless colour is enabled.
#[derive(Debug, Clone, Copy, Default)]
pub struct Styles {
    enabled: bool,
}

impl Styles {
    pub fn new(enabled: bool) -> Self {
        Styles { enabled }
    }
    /// Styles that never colour (for tests and files).
    pub fn plain() -> Self {
        Styles { enabled: false }
    }
    pub fn enabled(&self) -> bool {
        self.enabled
    }
    fn paint(&self, text: &str, f: impl Fn(&str) -> String) -> String {
        if self.enabled {
            f(text)
        } else {
            text.to_string()
        }
    }
    /// Good news.
    pub fn good(&self, text: &str) -> String {
        self.paint(text, |t| t.green().bold().to_string())
    }
    /// Something to act on.
    pub fn warn(&self, text: &str) -> String {
        self.paint(text, |t| t.yellow().bold().to_string())
    }
    /// Data at risk or a failure.
    pub fn bad(&self, text: &str) -> String {
        self.paint(text, |t| t.red().bold().to_string())
    }
    /// Headings.
    pub fn heading(&self, text: &str) -> String {
        self.paint(text, |t| t.bold().to_string())
    }
    /// Commands to copy.
    pub fn command(&self, text: &str) -> String {
        self.paint(text, |t| t.cyan().to_string())
    }
    /// Less important detail.
    pub fn dim(&self, text: &str) -> String {
        self.paint(text, |t| t.dimmed().to_string())
    }
}

/// Serialises a report as JSON or YAML (the `-o json|yaml` path), ending with a newline.
pub fn to_document<T: Serialize>(value: &T, format: Format) -> anyhow::Result<String> {
    let mut text = match format {
        Format::Json => serde_json::to_string_pretty(value)?,
        Format::Yaml => serde_saphyr::to_string(value)?,
        Format::Table => anyhow::bail!("a table is rendered by the command, not serialised"),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// Columns aligned like `kubectl get`: upper-case headers, three spaces between columns.
///
/// Widths are measured in characters of the plain text so that colour codes added by
/// `style` do not shift the columns.
pub fn table(
    headers: &[&str],
    rows: &[Vec<String>],
    style: impl Fn(usize, &str) -> String,
) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<String>, plain: Vec<usize>| {
        let last = cells.len().saturating_sub(1);
        for (i, (cell, len)) in cells.iter().zip(plain).enumerate() {
            out.push_str(cell);
            if i != last {
                out.push_str(&" ".repeat(widths[i] - len + 3));
            }
        }
        out.push('\n');
    };
    line(
        headers.iter().map(|h| h.to_uppercase()).collect(),
        headers.iter().map(|h| h.chars().count()).collect(),
    );
    for row in rows {
        line(
            row.iter().enumerate().map(|(i, c)| style(i, c)).collect(),
            row.iter().map(|c| c.chars().count()).collect(),
        );
    }
    out
}

/// Writes to standard output, treating a closed pipe as the reader's choice, not a failure.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// `n` and the noun that goes with it: `1 file`, `3 files`, `0 files`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_the_noun_their_number_needs() {
        assert_eq!(count(1, "symlink", "symlinks"), "1 symlink");
        assert_eq!(count(0, "file", "files"), "0 files");
        assert_eq!(count(2, "directory", "directories"), "2 directories");
    }

    #[test]
    fn no_color_wins_and_auto_follows_the_terminal() {
        assert!(!color_enabled(ColorChoice::Always, true, true));
        assert!(!color_enabled(ColorChoice::Auto, true, true));
        assert!(color_enabled(ColorChoice::Auto, false, true));
        assert!(!color_enabled(ColorChoice::Auto, false, false));
        assert!(color_enabled(ColorChoice::Always, false, false));
        assert!(!color_enabled(ColorChoice::Never, false, true));
    }

    #[test]
    fn plain_styles_add_nothing_and_enabled_ones_do() {
        assert_eq!(Styles::plain().bad("x"), "x");
        assert_ne!(Styles::new(true).bad("x"), "x");
    }

    #[test]
    fn tables_align_on_plain_width() {
        let rows = vec![
            vec!["a".to_string(), "long value".to_string()],
            vec!["longer".to_string(), "b".to_string()],
        ];
        let plain = table(&["name", "value"], &rows, |_, c| c.to_string());
        assert_eq!(plain, "NAME     VALUE\na        long value\nlonger   b\n");
        let coloured = table(&["name", "value"], &rows, |_, c| Styles::new(true).bad(c));
        let stripped: String = strip_ansi(&coloured);
        assert_eq!(stripped, plain);
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}
