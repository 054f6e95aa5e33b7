//! The device events of Spark's Structured Streaming tutorial: `{"time","action","id"}`,
//! each device opening once and closing later. Opens are front-loaded and closes lag them,
//! so hourly counts show more Opens early and more Closes late, as the tutorial's plot does.
//! Arrival order has bounded jitter; a chosen fraction of events arrives far too late.

use super::rng::Rng;
use crate::time::{format_timestamp, MICROS_PER_HOUR, MICROS_PER_MINUTE, MICROS_PER_SECOND};

/// Generator settings.
#[derive(Debug, Clone)]
pub struct TutorialSpec {
    /// Total events (half Open, half Close).
    pub events: u64,
    pub hours: u64,
    /// Event time of the first possible event, microseconds.
    pub start: i64,
    pub seed: u64,
    /// Maximum arrival delay of an on-time event, microseconds.
    pub jitter: i64,
    /// Fraction of events that arrive `late_by` after their time.
    pub late_fraction: f64,
    pub late_by: i64,
    pub time_format: TimeFormat,
}

/// How `time` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TimeFormat {
    /// `2016-07-26T01:02:03.456Z`
    Rfc3339,
    /// Epoch milliseconds.
    EpochMillis,
    /// Epoch seconds, as the Databricks sample data.
    EpochSeconds,
}

impl Default for TutorialSpec {
    fn default() -> Self {
        TutorialSpec {
            events: 100_000,
            hours: 48,
            start: 1_469_491_200_000_000, // 2016-07-26T00:00:00Z, the tutorial's first day
            seed: 42,
            jitter: 10 * MICROS_PER_MINUTE,
            late_fraction: 0.0,
            late_by: 3 * MICROS_PER_HOUR,
            time_format: TimeFormat::Rfc3339,
        }
    }
}

/// One generated event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub time: i64,
    pub open: bool,
    pub device: u32,
    /// When it is delivered (sort key), microseconds.
    pub arrival: i64,
}

impl Event {
    pub fn action(&self) -> &'static str {
        if self.open {
            "Open"
        } else {
            "Close"
        }
    }

    /// `{"time":…,"action":…,"id":…}`
    pub fn json(&self, format: TimeFormat, out: &mut String) {
        out.push_str("{\"time\":");
        match format {
            TimeFormat::Rfc3339 => {
                out.push('"');
                format_timestamp(self.time, out);
                out.push('"');
            }
            TimeFormat::EpochMillis => out.push_str(&self.time.div_euclid(1000).to_string()),
            TimeFormat::EpochSeconds => out.push_str(&self.time.div_euclid(MICROS_PER_SECOND).to_string()),
        }
        out.push_str(",\"action\":\"");
        out.push_str(self.action());
        out.push_str("\",\"id\":\"device-");
        out.push_str(&self.device.to_string());
        out.push_str("\"}");
    }
}

/// All events in arrival order.
pub fn generate(spec: &TutorialSpec) -> Vec<Event> {
    let mut rng = Rng::new(spec.seed);
    let span = (spec.hours.max(1) as i64) * MICROS_PER_HOUR;
    let devices = spec.events / 2 + spec.events % 2;
    let mut events = Vec::with_capacity(spec.events as usize);
    let mean_delay = span as f64 / 16.0;
    for d in 0..devices {
        // Open density falls linearly to 30% by the end: x = F^-1(u) of p(x) ∝ 1 - 0.7x.
        let u = rng.f64();
        let x = (1.0 - (1.0 - 4.0 * 0.35 * 0.65 * u).sqrt()) / 0.7;
        let open = spec.start + (x * span as f64) as i64;
        let remaining = spec.start + span - open;
        let mut delay = MICROS_PER_MINUTE + rng.exp(mean_delay) as i64;
        if delay >= remaining {
            delay = (rng.f64() * remaining as f64) as i64;
        }
        events.push(Event { time: open, open: true, device: d as u32, arrival: 0 });
        if (events.len() as u64) < spec.events {
            events.push(Event { time: open + delay, open: false, device: d as u32, arrival: 0 });
        }
    }
    for e in &mut events {
        e.arrival = if spec.late_fraction > 0.0 && rng.f64() < spec.late_fraction {
            e.time + spec.late_by
        } else {
            e.time + (rng.f64() * spec.jitter as f64) as i64
        };
    }
    events.sort_by_key(|e| (e.arrival, e.time, e.device, e.open));
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_balanced_and_within_span() {
        let spec = TutorialSpec { events: 10_000, ..TutorialSpec::default() };
        let a = generate(&spec);
        assert_eq!(a, generate(&spec), "same seed, same events");
        assert_eq!(a.len(), 10_000);
        assert_eq!(a.iter().filter(|e| e.open).count(), 5_000);
        let end = spec.start + 48 * MICROS_PER_HOUR;
        assert!(a.iter().all(|e| e.time >= spec.start && e.time < end));
    }

    #[test]
    fn disorder_stays_within_the_jitter() {
        let spec = TutorialSpec { events: 5_000, ..TutorialSpec::default() };
        let mut max_seen = i64::MIN;
        for e in generate(&spec) {
            assert!(max_seen.saturating_sub(e.time) <= spec.jitter, "an on-time event is never more than the jitter behind");
            max_seen = max_seen.max(e.time);
        }
    }

    #[test]
    fn opens_lead_early_and_closes_lead_late() {
        let spec = TutorialSpec::default();
        let events = generate(&spec);
        let hour = |e: &Event| (e.time - spec.start) / MICROS_PER_HOUR;
        let count = |h: std::ops::Range<i64>, open: bool| events.iter().filter(|e| e.open == open && h.contains(&hour(e))).count();
        assert!(count(0..6, true) * 2 > count(0..6, false) * 3, "opens lead by half in the first hours");
        assert!(count(36..48, false) > count(36..48, true));
    }

    #[test]
    fn late_fraction_makes_late_events() {
        let spec = TutorialSpec { events: 10_000, late_fraction: 0.01, ..TutorialSpec::default() };
        let mut max_seen = i64::MIN;
        let mut late = 0;
        for e in generate(&spec) {
            if max_seen.saturating_sub(e.time) > 2 * MICROS_PER_HOUR {
                late += 1;
            }
            max_seen = max_seen.max(e.time);
        }
        assert!((50..=150).contains(&late), "{late} late events");
    }

    #[test]
    fn json_shape() {
        let e = Event { time: 1_469_491_200_000_000, open: true, device: 7, arrival: 0 };
        let mut s = String::new();
        e.json(TimeFormat::Rfc3339, &mut s);
        assert_eq!(s, r#"{"time":"2016-07-26T00:00:00.000Z","action":"Open","id":"device-7"}"#);
        s.clear();
        e.json(TimeFormat::EpochSeconds, &mut s);
        assert_eq!(s, r#"{"time":1469491200,"action":"Open","id":"device-7"}"#);
    }
}
