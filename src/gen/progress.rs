//! A progress bar with rate and ETA for long `gen` runs, drawn on stderr only when it is a
//! terminal, so piped and CI output stays clean.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct ProgressBar {
    label: &'static str,
    total: u64,
    done: u64,
    started: Instant,
    last_draw: Instant,
    enabled: bool,
}

impl ProgressBar {
    /// `wanted`: the caller would like a bar (e.g. not when printing records to stdout).
    pub fn new(label: &'static str, total: u64, wanted: bool) -> ProgressBar {
        let now = Instant::now();
        ProgressBar { label, total, done: 0, started: now, last_draw: now, enabled: wanted && std::io::stderr().is_terminal() }
    }

    pub fn set(&mut self, done: u64) {
        self.done = done;
        if self.enabled && self.last_draw.elapsed() >= Duration::from_millis(100) {
            self.draw();
            self.last_draw = Instant::now();
        }
    }

    pub fn done(&mut self) {
        if self.enabled {
            self.done = self.total;
            self.draw();
            eprintln!();
        }
    }

    fn draw(&self) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.done as f64 / secs;
        let frac = if self.total == 0 { 1.0 } else { self.done as f64 / self.total as f64 };
        let width = 30;
        let filled = (frac * width as f64) as usize;
        let eta = if rate > 0.0 { (self.total.saturating_sub(self.done)) as f64 / rate } else { 0.0 };
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r{} [{}{}] {:>3.0}% {}/{} {:.0}/s ETA {:.0}s ",
            self.label,
            "#".repeat(filled),
            " ".repeat(width - filled.min(width)),
            frac * 100.0,
            self.done,
            self.total,
            rate,
            eta
        );
        let _ = err.flush();
    }
}
