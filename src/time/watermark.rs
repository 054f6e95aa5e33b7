//! Watermarks: per input partition, `max event time seen − delay`; per task, the minimum over
//! its inputs that are not idle. Neither ever goes backwards. Idleness is the only wall-clock
//! rule, and the clock is passed in (`now`) so it is testable without sleeping.

use std::time::{Duration, Instant};

/// The watermark before any event has been seen: everything is on time.
pub const NO_WATERMARK: i64 = i64::MIN;

/// The watermark generator of one input partition.
#[derive(Debug, Clone)]
pub struct PartitionWatermark {
    delay: i64,
    idle_timeout: Option<Duration>,
    max_event_time: i64,
    last_activity: Instant,
}

impl PartitionWatermark {
    pub fn new(delay: i64, idle_timeout: Option<Duration>, now: Instant) -> PartitionWatermark {
        PartitionWatermark { delay, idle_timeout, max_event_time: NO_WATERMARK, last_activity: now }
    }

    /// Records one event; returns true when the watermark moved.
    pub fn observe(&mut self, event_time: i64, now: Instant) -> bool {
        self.last_activity = now;
        if event_time > self.max_event_time {
            let before = self.watermark();
            self.max_event_time = event_time;
            return self.watermark() != before;
        }
        false
    }

    /// Records activity that carries no event time (a record that failed to decode).
    pub fn touch(&mut self, now: Instant) {
        self.last_activity = now;
    }

    /// `max event time − delay`, or [`NO_WATERMARK`] before the first event.
    pub fn watermark(&self) -> i64 {
        if self.max_event_time == NO_WATERMARK {
            NO_WATERMARK
        } else {
            self.max_event_time.saturating_sub(self.delay)
        }
    }

    pub fn max_event_time(&self) -> i64 {
        self.max_event_time
    }

    /// Restores the maximum event time saved in state (after a restart or a rebalance).
    pub fn restore(&mut self, max_event_time: i64) {
        self.max_event_time = self.max_event_time.max(max_event_time);
    }

    /// Forces the watermark to +infinity: the input is finished (bounded runs).
    pub fn finish(&mut self) {
        self.max_event_time = i64::MAX;
        self.delay = 0;
    }

    /// True when no record has arrived for `idle_timeout`.
    pub fn is_idle(&self, now: Instant) -> bool {
        match self.idle_timeout {
            Some(timeout) => now.saturating_duration_since(self.last_activity) >= timeout,
            None => false,
        }
    }
}

/// Combines the watermarks of several inputs: the minimum over the inputs that are not idle,
/// never going backwards. When every input is idle the watermark holds still.
#[derive(Debug, Clone)]
pub struct WatermarkMerger {
    inputs: Vec<(i64, bool)>,
    current: i64,
}

impl WatermarkMerger {
    pub fn new(inputs: usize) -> WatermarkMerger {
        WatermarkMerger { inputs: vec![(NO_WATERMARK, false); inputs], current: NO_WATERMARK }
    }

    /// Sets input `i`'s watermark (monotonic per input) and idleness; returns the merged value.
    pub fn update(&mut self, i: usize, watermark: i64, idle: bool) -> i64 {
        if let Some(input) = self.inputs.get_mut(i) {
            input.0 = input.0.max(watermark);
            input.1 = idle;
        }
        self.recompute()
    }

    pub fn input(&self, i: usize) -> Option<(i64, bool)> {
        self.inputs.get(i).copied()
    }

    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Every input is idle (and there is at least one).
    pub fn all_idle(&self) -> bool {
        !self.inputs.is_empty() && self.inputs.iter().all(|(_, idle)| *idle)
    }

    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Restores a merged value saved in state; the merged watermark never goes below it.
    pub fn restore_current(&mut self, current: i64) {
        self.current = self.current.max(current);
    }

    pub fn current(&self) -> i64 {
        self.current
    }

    fn recompute(&mut self) -> i64 {
        let active = self.inputs.iter().filter(|(_, idle)| !idle).map(|(wm, _)| *wm).min();
        if let Some(min) = active {
            self.current = self.current.max(min);
        }
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn partition_watermark_is_max_minus_delay() {
        let t0 = Instant::now();
        let mut p = PartitionWatermark::new(10, None, t0);
        assert_eq!(p.watermark(), NO_WATERMARK);
        assert!(p.observe(100, t0));
        assert_eq!(p.watermark(), 90);
        assert!(!p.observe(50, t0), "an older event does not move it");
        assert_eq!(p.watermark(), 90);
        assert!(p.observe(120, t0));
        assert_eq!(p.watermark(), 110);
    }

    #[test]
    fn task_watermark_is_min_over_inputs() {
        let mut m = WatermarkMerger::new(2);
        assert_eq!(m.update(0, 100, false), NO_WATERMARK, "input 1 has not been heard from");
        assert_eq!(m.update(1, 40, false), 40);
        assert_eq!(m.update(1, 200, false), 100);
    }

    #[test]
    fn an_idle_input_stops_holding_the_watermark_back() {
        let t0 = Instant::now();
        let mut slow = PartitionWatermark::new(0, Some(Duration::from_secs(30)), t0);
        slow.observe(10, t0);
        assert!(!slow.is_idle(t0 + Duration::from_secs(29)));
        assert!(slow.is_idle(t0 + Duration::from_secs(30)));

        let mut m = WatermarkMerger::new(2);
        m.update(0, 10, false);
        assert_eq!(m.update(1, 500, false), 10);
        assert_eq!(m.update(0, 10, true), 500, "idle input 0 no longer counts");
        // it wakes up with old data: the watermark does not go back
        assert_eq!(m.update(0, 20, false), 500);
    }

    #[test]
    fn when_every_input_is_idle_the_watermark_holds() {
        let mut m = WatermarkMerger::new(2);
        m.update(0, 10, false);
        m.update(1, 30, false);
        assert_eq!(m.update(0, 10, true), 30);
        assert_eq!(m.update(1, 30, true), 30);
    }

    proptest! {
        #[test]
        fn merged_watermark_never_regresses(updates in proptest::collection::vec((0usize..3, -1000i64..1000, any::<bool>()), 1..200)) {
            let mut m = WatermarkMerger::new(3);
            let mut last = NO_WATERMARK;
            for (i, wm, idle) in updates {
                let now = m.update(i, wm, idle);
                prop_assert!(now >= last);
                last = now;
            }
        }

        #[test]
        fn partition_watermark_never_regresses(events in proptest::collection::vec(-1000i64..1000, 1..200)) {
            let t0 = Instant::now();
            let mut p = PartitionWatermark::new(5, None, t0);
            let mut last = NO_WATERMARK;
            for e in events {
                p.observe(e, t0);
                prop_assert!(p.watermark() >= last);
                last = p.watermark();
            }
        }
    }
}
