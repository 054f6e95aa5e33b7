//! Window assignment exactly as Spark's `TimeWindowing` rule: windows are half-open
//! `[start, end)`, aligned to the epoch plus an optional start offset, and a sliding window
//! of size S and slide L gives each timestamp the ceil(S/L) windows that contain it.

/// A tumbling (`slide == size`) or sliding window definition, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    pub size: i64,
    pub slide: i64,
    /// Spark's `startTime` argument: shifts window boundaries from the epoch.
    pub offset: i64,
}

impl WindowSpec {
    pub fn tumbling(size: i64) -> WindowSpec {
        WindowSpec { size, slide: size, offset: 0 }
    }

    pub fn sliding(size: i64, slide: i64) -> WindowSpec {
        WindowSpec { size, slide, offset: 0 }
    }

    pub fn is_tumbling(&self) -> bool {
        self.size == self.slide
    }

    /// The end of the last window that contains `ts` (the latest-closing one).
    pub fn last_end(&self, ts: i64) -> i64 {
        self.last_start(ts).saturating_add(self.size)
    }

    fn last_start(&self, ts: i64) -> i64 {
        ts - (ts - self.offset).rem_euclid(self.slide)
    }
}

/// Calls `f(start, end)` for every window containing `ts`, latest-starting first.
pub fn assign_windows(spec: &WindowSpec, ts: i64, mut f: impl FnMut(i64, i64)) {
    let last_start = spec.last_start(ts);
    let mut start = last_start;
    // ceil(size / slide) windows at most; only those with start <= ts < end qualify.
    let overlapping = (spec.size + spec.slide - 1) / spec.slide;
    for _ in 0..overlapping {
        let end = start.saturating_add(spec.size);
        if start <= ts && ts < end {
            f(start, end);
        }
        start = start.saturating_sub(spec.slide);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::MICROS_PER_MINUTE as MIN;

    fn windows(spec: WindowSpec, ts: i64) -> Vec<(i64, i64)> {
        let mut v = Vec::new();
        assign_windows(&spec, ts, |s, e| v.push((s, e)));
        v.sort();
        v
    }

    #[test]
    fn an_event_at_a_window_end_belongs_to_the_next_window() {
        let spec = WindowSpec::tumbling(60 * MIN);
        assert_eq!(windows(spec, 60 * MIN), vec![(60 * MIN, 120 * MIN)]);
        assert_eq!(windows(spec, 60 * MIN - 1), vec![(0, 60 * MIN)]);
        assert_eq!(windows(spec, -1), vec![(-60 * MIN, 0)]);
    }

    #[test]
    fn sliding_windows_start_before_the_first_event() {
        // Spark: window(ts, '10 minutes', '5 minutes') at 12:07 gives [12:00,12:10) and [12:05,12:15).
        let spec = WindowSpec::sliding(10 * MIN, 5 * MIN);
        let t = 12 * 60 * MIN + 7 * MIN;
        assert_eq!(windows(spec, t), vec![(t - 7 * MIN, t + 3 * MIN), (t - 2 * MIN, t + 8 * MIN)]);
        // exactly on a slide boundary: [12:00,12:10) and [11:55,12:05)
        let b = 12 * 60 * MIN;
        assert_eq!(windows(spec, b), vec![(b - 5 * MIN, b + 5 * MIN), (b, b + 10 * MIN)]);
    }

    #[test]
    fn slide_that_does_not_divide_size() {
        // size 10, slide 3: ceil(10/3) = 4 candidate windows, those containing ts qualify.
        let spec = WindowSpec::sliding(10, 3);
        let w = windows(spec, 9);
        assert_eq!(w, vec![(0, 10), (3, 13), (6, 16), (9, 19)]);
        let w = windows(spec, 10);
        assert_eq!(w, vec![(3, 13), (6, 16), (9, 19)]);
        assert_eq!(spec.last_end(10), 19);
    }

    #[test]
    fn start_offset_shifts_boundaries() {
        let spec = WindowSpec { size: 60, slide: 60, offset: 15 };
        assert_eq!(windows(spec, 10), vec![(-45, 15)]);
        assert_eq!(windows(spec, 15), vec![(15, 75)]);
    }
}
