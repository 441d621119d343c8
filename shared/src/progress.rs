//! Progress of long work (copies, listings, checksums): on a terminal an indicatif bar with
//! bytes done, rate and ETA; without one, one plain line every few seconds so logs show the
//! work is alive without filling up; with `-o json|yaml` nothing at all, so stdout and stderr
//! stay machine-readable. Everything goes to stderr.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::Format;

/// How often the plain lines come without a terminal.
pub const LINE_EVERY: Duration = Duration::from_secs(5);

/// What is counted: bytes (shown as KiB, MiB…) or items (files, entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Items(&'static str),
}

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A redrawn bar (stderr is a terminal).
    Bar,
    /// A line every `every` (stderr is a file or a pipe).
    Lines { every: Duration },
    /// Nothing (machine-readable output).
    Hidden,
}

impl Mode {
    /// The mode for an output format and a terminal or not: never anything for JSON or YAML.
    pub fn choose(format: Format, terminal: bool) -> Mode {
        match (format, terminal) {
            (Format::Table, true) => Mode::Bar,
            (Format::Table, false) => Mode::Lines { every: LINE_EVERY },
            _ => Mode::Hidden,
        }
    }

    /// The mode for this process's stderr.
    pub fn for_stderr(format: Format) -> Mode {
        Mode::choose(format, std::io::stderr().is_terminal())
    }
}

struct Lines {
    every: Duration,
    started: Instant,
    last: Instant,
    position: u64,
}

enum Sink {
    Bar(ProgressBar),
    Lines(Mutex<Lines>),
    Hidden,
}

/// One piece of long work being shown.
pub struct Progress {
    label: String,
    total: Option<u64>,
    unit: Unit,
    sink: Sink,
}

impl Progress {
    /// Starts showing `label` (`copying /source`) with a known or unknown total.
    pub fn new(label: &str, total: Option<u64>, unit: Unit, mode: Mode) -> Progress {
        let sink = match mode {
            Mode::Bar => {
                let bar = match total {
                    Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
                    None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
                };
                let template = match (unit, total) {
                    (Unit::Bytes, Some(_)) => {
                        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
                            .to_string()
                    }
                    (Unit::Bytes, None) => "{spinner} {msg} {bytes} {bytes_per_sec}".to_string(),
                    (Unit::Items(what), Some(_)) => format!(
                        "{{msg}} [{{bar:30}}] {{pos}}/{{len}} {what} {{per_sec}} ETA {{eta}}"
                    ),
                    (Unit::Items(what), None) => {
                        format!("{{spinner}} {{msg}} {{pos}} {what} {{per_sec}}")
                    }
                };
                if let Ok(style) = ProgressStyle::with_template(&template) {
                    bar.set_style(style.progress_chars("#>-"));
                }
                bar.set_message(label.to_string());
                bar.enable_steady_tick(Duration::from_millis(200));
                Sink::Bar(bar)
            }
            Mode::Lines { every } => {
                let now = Instant::now();
                Sink::Lines(Mutex::new(Lines {
                    every,
                    started: now,
                    last: now,
                    position: 0,
                }))
            }
            Mode::Hidden => Sink::Hidden,
        };
        Progress {
            label: label.into(),
            total,
            unit,
            sink,
        }
    }

    /// Bytes of work, on this process's stderr.
    pub fn bytes(label: &str, total: Option<u64>, format: Format) -> Progress {
        Progress::new(label, total, Unit::Bytes, Mode::for_stderr(format))
    }

    /// Items of work (`pods`, `files`), on this process's stderr.
    pub fn items(label: &str, total: Option<u64>, what: &'static str, format: Format) -> Progress {
        Progress::new(label, total, Unit::Items(what), Mode::for_stderr(format))
    }

    /// Prints a line on stderr without breaking a bar that is being drawn.
    pub fn println(&self, line: &str) {
        match &self.sink {
            Sink::Bar(bar) => bar.println(line),
            _ => eprintln!("{line}"),
        }
    }

    /// Sets how much is done.
    pub fn set(&self, position: u64) {
        match &self.sink {
            Sink::Bar(bar) => bar.set_position(position),
            Sink::Lines(lines) => {
                let Ok(mut l) = lines.lock() else { return };
                l.position = position;
                if l.last.elapsed() >= l.every {
                    l.last = Instant::now();
                    eprintln!("{}", self.line(position, l.started.elapsed()));
                }
            }
            Sink::Hidden => {}
        }
    }

    /// Adds to how much is done.
    pub fn inc(&self, n: u64) {
        match &self.sink {
            Sink::Bar(bar) => bar.inc(n),
            Sink::Lines(lines) => {
                let position = lines.lock().map(|l| l.position).unwrap_or(0);
                self.set(position.saturating_add(n));
            }
            Sink::Hidden => {}
        }
    }

    /// Ends the display: the bar is cleared; a plain-line display says how long it took.
    pub fn finish(self) {
        match &self.sink {
            Sink::Bar(bar) => bar.finish_and_clear(),
            Sink::Lines(lines) => {
                if let Ok(l) = lines.lock()
                    && l.started.elapsed() >= l.every
                {
                    eprintln!(
                        "{}: {} in {}",
                        self.label,
                        self.amount(l.position),
                        HumanDuration(l.started.elapsed())
                    );
                }
            }
            Sink::Hidden => {}
        }
    }

    fn amount(&self, n: u64) -> String {
        match self.unit {
            Unit::Bytes => HumanBytes(n).to_string(),
            Unit::Items(what) => format!("{n} {what}"),
        }
    }

    /// The plain line: what, how much of how much, rate and ETA.
    fn line(&self, position: u64, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64().max(0.001);
        let rate = position as f64 / secs;
        let rate = match self.unit {
            Unit::Bytes => format!("{}/s", HumanBytes(rate as u64)),
            // Slow work (pods coming back) would read 0/s without a decimal.
            Unit::Items(what) if rate < 10.0 => format!("{rate:.1} {what}/s"),
            Unit::Items(what) => format!("{rate:.0} {what}/s"),
        };
        match self.total {
            Some(total) if total > 0 => {
                let pct = position.min(total) * 100 / total;
                let eta = if position > 0 {
                    let left = total.saturating_sub(position) as f64 / (position as f64 / secs);
                    format!(", ETA {}", HumanDuration(Duration::from_secs_f64(left)))
                } else {
                    String::new()
                };
                // Items name their unit once: `0 of 4 pods`; bytes carry it on both.
                let done = match self.unit {
                    Unit::Bytes => self.amount(position),
                    Unit::Items(_) => position.to_string(),
                };
                format!(
                    "{}: {done} of {} ({pct}%), {rate}{eta}",
                    self.label,
                    self.amount(total)
                )
            }
            _ => format!("{}: {}, {rate}", self.label, self.amount(position)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_readable_output_never_gets_progress() {
        assert_eq!(Mode::choose(Format::Json, true), Mode::Hidden);
        assert_eq!(Mode::choose(Format::Yaml, false), Mode::Hidden);
        assert_eq!(Mode::choose(Format::Table, true), Mode::Bar);
        assert_eq!(
            Mode::choose(Format::Table, false),
            Mode::Lines { every: LINE_EVERY }
        );
    }

    #[test]
    fn a_plain_line_says_how_much_of_how_much_at_what_rate() {
        let p = Progress::new("copying", Some(4 << 20), Unit::Bytes, Mode::Hidden);
        let line = p.line(1 << 20, Duration::from_secs(1));
        assert_eq!(
            line,
            "copying: 1.00 MiB of 4.00 MiB (25%), 1.00 MiB/s, ETA 3 seconds"
        );
        let p = Progress::new(
            "restarting pods",
            Some(4),
            Unit::Items("pods"),
            Mode::Hidden,
        );
        assert_eq!(
            p.line(1, Duration::from_secs(4)),
            "restarting pods: 1 of 4 pods (25%), 0.2 pods/s, ETA 12 seconds"
        );
        let p = Progress::new("listing", None, Unit::Items("entries"), Mode::Hidden);
        assert_eq!(
            p.line(500, Duration::from_secs(2)),
            "listing: 500 entries, 250 entries/s"
        );
    }
}
