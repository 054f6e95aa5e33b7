//! Metric handles of one task and of one assigned input partition: their labelled series are
//! looked up once, when the task or partition appears, and removed when it goes away, so a
//! revoked partition leaves no stale watermark, lag or state size behind (counters stay:
//! they only ever grow, and a partition that comes back continues them). Depends on the
//! metric families in this module only.

use prometheus::{Gauge, GaugeVec, IntCounter, IntGauge, IntGaugeVec};

use super::Metrics;

/// The series of one task: a query's operator stage on one partition.
pub struct TaskSeries {
    vecs: (GaugeVec, GaugeVec),
    /// The watermark and its delay, from the task's first watermark on.
    watermark: Option<(Gauge, Gauge)>,
    /// Entries and bytes in the operator's state, for a stateful task.
    state: Option<(IntGaugeVec, IntGauge, IntGauge)>,
    entries: IntGaugeVec,
    query: String,
    operator: &'static str,
    partition: String,
}

impl TaskSeries {
    /// `operator` names the stateful operator (its state series), `None` for a stateless task.
    pub fn new(metrics: &Metrics, query: &str, operator: Option<&'static str>, partition: i32) -> TaskSeries {
        let p = partition.to_string();
        let state = operator.map(|op| {
            let labels = [query, op, p.as_str()];
            (metrics.state_bytes.clone(), metrics.state_entries.with_label_values(&labels), metrics.state_bytes.with_label_values(&labels))
        });
        TaskSeries {
            vecs: (metrics.watermark.clone(), metrics.watermark_delay.clone()),
            watermark: None,
            state,
            query: query.to_string(),
            operator: operator.unwrap_or(""),
            partition: p,
            entries: metrics.state_entries.clone(),
        }
    }

    /// After a commit: the task's watermark (microseconds; `None` while it has none or once
    /// it is final) against the wall clock, and its state's size.
    pub fn publish(&mut self, watermark_us: Option<i64>, now_s: f64, entries: usize, bytes: usize) {
        if let Some(wm) = watermark_us {
            let wm_s = wm as f64 / 1e6;
            let (vecs, labels) = (&self.vecs, [self.query.as_str(), self.partition.as_str()]);
            let (w, d) = self.watermark.get_or_insert_with(|| (vecs.0.with_label_values(&labels), vecs.1.with_label_values(&labels)));
            w.set(wm_s);
            d.set(now_s - wm_s);
        }
        if let Some((_, e, b)) = &self.state {
            e.set(entries as i64);
            b.set(bytes as i64);
        }
    }
}

impl Drop for TaskSeries {
    fn drop(&mut self) {
        if self.watermark.is_some() {
            let labels = [self.query.as_str(), self.partition.as_str()];
            let _ = self.vecs.0.remove_label_values(&labels);
            let _ = self.vecs.1.remove_label_values(&labels);
        }
        if let Some((bytes, _, _)) = &self.state {
            let labels = [self.query.as_str(), self.operator, self.partition.as_str()];
            let _ = self.entries.remove_label_values(&labels);
            let _ = bytes.remove_label_values(&labels);
        }
    }
}

/// The series of one assigned partition of a consumed topic.
pub struct InputSeries {
    lags: IntGaugeVec,
    /// From the first time its lag is known (never a made-up 0 before that).
    lag: std::cell::OnceCell<IntGauge>,
    /// Records consumed, for a source topic (a repartition topic's are internal).
    consumed: Option<IntCounter>,
    topic: String,
    partition: String,
}

impl InputSeries {
    pub fn new(metrics: &Metrics, topic: &str, partition: i32, source: bool) -> InputSeries {
        let p = partition.to_string();
        InputSeries {
            lags: metrics.consumer_lag.clone(),
            lag: std::cell::OnceCell::new(),
            consumed: source.then(|| metrics.records_consumed.with_label_values(&[topic, &p])),
            topic: topic.to_string(),
            partition: p,
        }
    }

    pub fn set_lag(&self, records: i64) {
        self.lag.get_or_init(|| self.lags.with_label_values(&[&self.topic, &self.partition])).set(records.max(0));
    }

    pub fn consumed(&self, records: u64) {
        if let Some(c) = &self.consumed {
            c.inc_by(records);
        }
    }
}

impl Drop for InputSeries {
    fn drop(&mut self) {
        if self.lag.get().is_some() {
            let _ = self.lags.remove_label_values(&[&self.topic, &self.partition]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{CONSUMER_LAG, STATE_ENTRIES, WATERMARK};

    fn series_of(m: &Metrics, name: &str) -> usize {
        m.registry.gather().iter().filter(|f| f.name() == name).map(|f| f.get_metric().len()).sum()
    }

    #[test]
    fn a_task_s_series_go_when_it_goes_and_another_task_s_stay() {
        let m = Metrics::new().expect("metrics");
        let mut a = TaskSeries::new(&m, "q", Some("window_aggregate"), 0);
        let mut b = TaskSeries::new(&m, "q", Some("window_aggregate"), 1);
        a.publish(Some(5_000_000), 10.0, 3, 300);
        b.publish(None, 10.0, 4, 400);
        assert_eq!(series_of(&m, WATERMARK), 1, "a watermark series only once there is a watermark");
        assert_eq!(series_of(&m, STATE_ENTRIES), 2);
        assert_eq!(m.state_entries.with_label_values(&["q", "window_aggregate", "0"]).get(), 3);
        assert_eq!(m.watermark_delay.with_label_values(&["q", "0"]).get(), 5.0);
        drop(a);
        assert_eq!(series_of(&m, WATERMARK), 0);
        assert_eq!(series_of(&m, STATE_ENTRIES), 1);
        assert_eq!(m.state_entries.with_label_values(&["q", "window_aggregate", "1"]).get(), 4);
    }

    #[test]
    fn an_input_s_lag_goes_with_it_and_its_consumed_count_stays() {
        let m = Metrics::new().expect("metrics");
        let i = InputSeries::new(&m, "events", 2, true);
        assert_eq!(series_of(&m, CONSUMER_LAG), 0, "no lag series before the lag is known");
        i.set_lag(-5);
        assert_eq!(m.consumer_lag.with_label_values(&["events", "2"]).get(), 0, "lag is never negative");
        i.set_lag(7);
        i.consumed(11);
        drop(i);
        assert_eq!(series_of(&m, CONSUMER_LAG), 0);
        assert_eq!(m.records_consumed.with_label_values(&["events", "2"]).get(), 11);
    }
}
