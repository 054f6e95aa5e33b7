//! A task's event-time clock: one watermark per input side — a local source partition, or
//! the upstream partitions of a repartition topic (learned from their markers) — merged into
//! the task watermark (minimum over the sides that are not idle, never backwards). It is
//! saved with the task's state, so a restored task resumes at the same watermark.

use std::time::{Duration, Instant};

use crate::state::codec::{CodecError, Reader, Writer};
use crate::time::{PartitionWatermark, WatermarkMerger, NO_WATERMARK};

const VERSION: u8 = 2;

enum SideClock {
    /// The source partition is read by this task.
    Local(PartitionWatermark),
    /// Upstream partitions report through markers.
    Remote(WatermarkMerger),
}

/// The clock of one task.
pub struct TaskClock {
    sides: Vec<SideClock>,
    merged: WatermarkMerger,
    /// Changed since the last `take_dirty`.
    dirty: bool,
}

/// How one side of a task gets its watermark.
#[derive(Debug, Clone, Copy)]
pub enum SideSpec {
    Local { delay: i64, idle_timeout: Option<Duration> },
    Remote { upstreams: usize },
}

impl TaskClock {
    pub fn new(sides: &[SideSpec], now: Instant) -> TaskClock {
        let sides: Vec<SideClock> = sides
            .iter()
            .map(|s| match *s {
                SideSpec::Local { delay, idle_timeout } => SideClock::Local(PartitionWatermark::new(delay, idle_timeout, now)),
                SideSpec::Remote { upstreams } => SideClock::Remote(WatermarkMerger::new(upstreams)),
            })
            .collect();
        let merged = WatermarkMerger::new(sides.len());
        TaskClock { sides, merged, dirty: false }
    }

    /// The task watermark.
    pub fn watermark(&self) -> i64 {
        self.merged.current()
    }

    /// Every side is idle (as of the last refresh).
    pub fn all_idle(&self) -> bool {
        self.merged.all_idle()
    }

    fn side_state(side: &SideClock, now: Instant) -> (i64, bool) {
        match side {
            SideClock::Local(p) => (p.watermark(), p.is_idle(now)),
            SideClock::Remote(m) => (m.current(), m.all_idle()),
        }
    }

    fn refresh(&mut self, side: usize, now: Instant) {
        if let Some(s) = self.sides.get(side) {
            let (wm, idle) = Self::side_state(s, now);
            let before = self.merged.current();
            self.merged.update(side, wm, idle);
            if self.merged.current() != before {
                self.dirty = true;
            }
        }
    }

    /// A local side saw an event.
    pub fn observe(&mut self, side: usize, event_time: i64, now: Instant) {
        if let Some(SideClock::Local(p)) = self.sides.get_mut(side) {
            if p.observe(event_time, now) {
                self.dirty = true;
            }
        }
        self.refresh(side, now);
    }

    /// A remote side's upstream partition reported its watermark.
    pub fn marker(&mut self, side: usize, upstream: usize, watermark: i64, idle: bool, now: Instant) {
        if let Some(SideClock::Remote(m)) = self.sides.get_mut(side) {
            let before = m.input(upstream);
            m.update(upstream, watermark, idle);
            if m.input(upstream) != before {
                self.dirty = true;
            }
        }
        self.refresh(side, now);
    }

    /// Re-evaluates idleness (wall clock).
    pub fn tick(&mut self, now: Instant) {
        for side in 0..self.sides.len() {
            self.refresh(side, now);
        }
    }

    /// Bounded runs: local inputs are finished. Remote sides learn it from their markers.
    pub fn finish_local(&mut self, now: Instant) {
        for side in 0..self.sides.len() {
            if let SideClock::Local(p) = &mut self.sides[side] {
                p.finish();
                self.dirty = true;
            }
            self.refresh(side, now);
        }
    }

    /// True once since the last change: the clock must be saved.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(VERSION);
        w.varint(self.sides.len() as u64);
        for s in &self.sides {
            match s {
                SideClock::Local(p) => {
                    w.u8(0);
                    w.i64(p.max_event_time());
                }
                SideClock::Remote(m) => {
                    w.u8(1);
                    w.varint(m.len() as u64);
                    for i in 0..m.len() {
                        w.i64(m.input(i).map_or(NO_WATERMARK, |(wm, _)| wm));
                    }
                }
            }
        }
        w.i64(self.merged.current());
        w.buf
    }

    /// Restores a saved clock (sides that changed shape since are left as they are).
    pub fn restore(&mut self, bytes: &[u8], now: Instant) -> Result<(), CodecError> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != VERSION {
            return Err(CodecError::UnknownVersion(version, VERSION));
        }
        let n = r.varint()? as usize;
        for i in 0..n {
            match r.u8()? {
                0 => {
                    let max = r.i64()?;
                    if let Some(SideClock::Local(p)) = self.sides.get_mut(i) {
                        p.restore(max);
                    }
                }
                1 => {
                    let count = r.varint()? as usize;
                    for u in 0..count {
                        let wm = r.i64()?;
                        if let Some(SideClock::Remote(m)) = self.sides.get_mut(i) {
                            m.update(u, wm, false);
                        }
                    }
                }
                _ => return Err(CodecError::Corrupt("task clock side")),
            }
        }
        let merged = r.i64()?;
        self.tick(now);
        self.merged.restore_current(merged);
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_two_sided_clock_is_the_minimum_and_survives_a_restore() {
        let t0 = Instant::now();
        let specs = [SideSpec::Local { delay: 10, idle_timeout: None }, SideSpec::Remote { upstreams: 2 }];
        let mut c = TaskClock::new(&specs, t0);
        c.observe(0, 100, t0);
        assert_eq!(c.watermark(), NO_WATERMARK, "the remote side has not reported");
        c.marker(1, 0, 50, false, t0);
        assert_eq!(c.watermark(), NO_WATERMARK, "one upstream of two");
        c.marker(1, 1, 70, false, t0);
        assert_eq!(c.watermark(), 50);
        assert!(c.take_dirty());
        let saved = c.encode();
        let mut r = TaskClock::new(&specs, t0);
        r.restore(&saved, t0).unwrap();
        assert_eq!(r.watermark(), 50);
        r.marker(1, 0, 95, false, t0);
        assert_eq!(r.watermark(), 70);
        r.observe(0, 60, t0);
        assert_eq!(r.watermark(), 70, "never backwards");
        assert!(r.restore(&[9], t0).is_err());
    }

    #[test]
    fn an_idle_local_side_stops_holding_back() {
        let t0 = Instant::now();
        let specs =
            [SideSpec::Local { delay: 0, idle_timeout: Some(Duration::from_secs(5)) }, SideSpec::Local { delay: 0, idle_timeout: None }];
        let mut c = TaskClock::new(&specs, t0);
        c.observe(0, 10, t0);
        c.observe(1, 100, t0);
        assert_eq!(c.watermark(), 10);
        c.tick(t0 + Duration::from_secs(5));
        assert_eq!(c.watermark(), 100);
    }
}
