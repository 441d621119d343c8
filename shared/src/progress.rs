//! Progress of long work (copies, listings, checksums): on a terminal an indicatif bar with
//! bytes done, rate and ETA; without one, one plain line every few seconds so logs show the
//! work is alive without filling up; with `-o json|yaml` nothing at all, so stdout and stderr
//! stay machine-readable. Everything goes to stderr. Work done at the same time shares a
//! [`Board`], so that its bars are drawn one under the other instead of over each other.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{
    HumanBytes, HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle,
};

use crate::output::Format;

/// How often the plain lines come without a terminal.
pub const LINE_EVERY: Duration = Duration::from_secs(5);

/// Environment variable setting how often the plain lines come instead (`30s`, `1m`; `0` for
/// every update), for logs that want more or fewer of them.
pub const EVERY_ENV: &str = "KUBECTL_UPGRADE_PROGRESS_EVERY";

/// The interval [`EVERY_ENV`] asks for, or [`LINE_EVERY`] when it is unset or not a duration.
fn line_every(value: Option<&str>) -> Duration {
    match value.map(crate::flags::parse_duration) {
        Some(Ok(d)) => d.0.unwrap_or(Duration::ZERO),
        _ => LINE_EVERY,
    }
}

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

    /// The mode for this process's stderr (plain lines as often as [`EVERY_ENV`] asks).
    pub fn for_stderr(format: Format) -> Mode {
        match Mode::choose(format, std::io::stderr().is_terminal()) {
            Mode::Lines { .. } => Mode::Lines {
                every: line_every(std::env::var(EVERY_ENV).ok().as_deref()),
            },
            mode => mode,
        }
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

/// Several pieces of work shown at once: on a terminal their bars share one
/// [`MultiProgress`], one line each; without a terminal each prints its own lines.
#[derive(Clone)]
pub struct Board {
    mode: Mode,
    multi: Option<MultiProgress>,
}

impl Board {
    /// A board showing its work in `mode`.
    pub fn new(mode: Mode) -> Board {
        Board {
            mode,
            multi: (mode == Mode::Bar)
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    /// A board on this process's stderr.
    pub fn for_stderr(format: Format) -> Board {
        Board::new(Mode::for_stderr(format))
    }

    /// Bytes of work shown on this board.
    pub fn bytes(&self, label: &str, total: Option<u64>) -> Progress {
        Progress::create(label, total, Unit::Bytes, self.mode, self.multi.as_ref())
    }

    /// Items of work (`entries`, `files`) shown on this board.
    pub fn items(&self, label: &str, total: Option<u64>, what: &'static str) -> Progress {
        Progress::create(
            label,
            total,
            Unit::Items(what),
            self.mode,
            self.multi.as_ref(),
        )
    }
}

/// Stands for an unknown total in [`Progress::total`].
const UNKNOWN: u64 = u64::MAX;

/// One piece of long work being shown.
pub struct Progress {
    label: String,
    /// The total, or [`UNKNOWN`]; it may become known while the work runs.
    total: AtomicU64,
    unit: Unit,
    sink: Sink,
}

/// The bar's template: with a total, a bar and an ETA; without one, a spinner and the rate.
fn template(unit: Unit, total: Option<u64>) -> String {
    match (unit, total) {
        (Unit::Bytes, Some(_)) => {
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}".to_string()
        }
        (Unit::Bytes, None) => "{spinner} {msg} {bytes} {bytes_per_sec}".to_string(),
        (Unit::Items(what), Some(_)) => {
            format!("{{msg}} [{{bar:30}}] {{pos}}/{{len}} {what} {{per_sec}} ETA {{eta}}")
        }
        (Unit::Items(what), None) => format!("{{spinner}} {{msg}} {{pos}} {what} {{per_sec}}"),
    }
}

fn style(bar: &ProgressBar, unit: Unit, total: Option<u64>) {
    if let Ok(style) = ProgressStyle::with_template(&template(unit, total)) {
        bar.set_style(style.progress_chars("#>-"));
    }
}

impl Progress {
    /// Starts showing `label` (`copying /source`) with a known or unknown total.
    pub fn new(label: &str, total: Option<u64>, unit: Unit, mode: Mode) -> Progress {
        Progress::create(label, total, unit, mode, None)
    }

    fn create(
        label: &str,
        total: Option<u64>,
        unit: Unit,
        mode: Mode,
        board: Option<&MultiProgress>,
    ) -> Progress {
        let sink = match mode {
            Mode::Bar => {
                let target = match board {
                    Some(_) => ProgressDrawTarget::hidden(),
                    None => ProgressDrawTarget::stderr(),
                };
                let bar = ProgressBar::with_draw_target(total, target);
                let bar = match board {
                    Some(multi) => multi.add(bar),
                    None => bar,
                };
                style(&bar, unit, total);
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
            total: AtomicU64::new(total.unwrap_or(UNKNOWN)),
            unit,
            sink,
        }
    }

    /// Sets the total once it is known (a listing's entries, counted by an earlier one).
    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        if let Sink::Bar(bar) = &self.sink {
            style(bar, self.unit, Some(total));
            bar.set_length(total);
        }
    }

    fn total(&self) -> Option<u64> {
        Some(self.total.load(Ordering::Relaxed)).filter(|t| *t != UNKNOWN)
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
        match self.total() {
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
    fn the_interval_of_plain_lines_can_be_set() {
        assert_eq!(line_every(None), LINE_EVERY);
        assert_eq!(line_every(Some("30s")), Duration::from_secs(30));
        assert_eq!(line_every(Some("0")), Duration::ZERO);
        assert_eq!(line_every(Some("soon")), LINE_EVERY);
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
        p.set_total(1000);
        assert_eq!(
            p.line(500, Duration::from_secs(2)),
            "listing: 500 of 1000 entries (50%), 250 entries/s, ETA 2 seconds"
        );
    }

    #[test]
    fn work_on_one_board_is_shown_like_work_alone() {
        let board = Board::new(Mode::Hidden);
        let copy = board.bytes("copying", Some(4 << 20));
        let listing = board.items("listing /source", None, "entries");
        assert_eq!(
            copy.line(1 << 20, Duration::from_secs(1)),
            "copying: 1.00 MiB of 4.00 MiB (25%), 1.00 MiB/s, ETA 3 seconds"
        );
        assert_eq!(
            listing.line(10, Duration::from_secs(1)),
            "listing /source: 10 entries, 10 entries/s"
        );
    }
}
