//! Where a command's time goes: the wall time of each phase, printed once on stderr at the end
//! when `KUBECTL_UPGRADE_BACKUP_TIMINGS` is set (to anything but `0` or nothing), so a slow dump
//! or restore can be taken apart without a profiler. The benchmark sets it. Nothing is printed
//! otherwise, and the figures never go to stdout, so `-o json` stays machine-readable.

use std::time::{Duration, Instant};

/// The environment variable that turns the figures on.
pub const ENV: &str = "KUBECTL_UPGRADE_BACKUP_TIMINGS";

/// Phase times of one command, in the order they were taken.
#[derive(Debug)]
pub struct Timings {
    enabled: bool,
    started: Instant,
    last: Instant,
    phases: Vec<(String, Duration)>,
}

impl Timings {
    /// Times kept (and printed) only when [`ENV`] asks for them.
    pub fn from_env() -> Timings {
        let on = std::env::var(ENV).is_ok_and(|v| !v.is_empty() && v != "0");
        Timings::new(on)
    }

    /// Times that are printed when `enabled`.
    pub fn new(enabled: bool) -> Timings {
        let now = Instant::now();
        Timings {
            enabled,
            started: now,
            last: now,
            phases: Vec::new(),
        }
    }

    /// Ends the phase `name`: the time since the previous phase ended (or since the start).
    pub fn lap(&mut self, name: &str) {
        let now = Instant::now();
        self.phases.push((name.to_string(), now - self.last));
        self.last = now;
    }

    /// Records a part measured elsewhere (time spent inside a phase, on another thread).
    pub fn part(&mut self, name: &str, took: Duration) {
        self.phases.push((name.to_string(), took));
    }

    /// One line: every phase, then the total since the start.
    pub fn render(&self) -> String {
        let mut out = String::from("timings:");
        for (name, took) in &self.phases {
            out.push_str(&format!(" {name} {:.3}s,", took.as_secs_f64()));
        }
        out.push_str(&format!(
            " total {:.3}s",
            (self.last - self.started).as_secs_f64()
        ));
        out
    }

    /// Prints [`Timings::render`] on stderr once, when enabled.
    pub fn print(&self) {
        if self.enabled {
            eprintln!("{}", self.render());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_listed_in_order_with_the_total() {
        let mut t = Timings::new(true);
        t.lap("connect");
        t.part("inspection", Duration::from_millis(1500));
        t.lap("stream");
        let line = t.render();
        assert!(line.starts_with("timings: connect 0.0"), "{line}");
        let connect = line.find("connect").unwrap();
        let inspection = line.find("inspection 1.500s").unwrap();
        let stream = line.find("stream ").unwrap();
        assert!(connect < inspection && inspection < stream, "{line}");
        assert!(line.contains(", total "), "{line}");
    }
}
