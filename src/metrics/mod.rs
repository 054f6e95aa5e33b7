//! Observability: every metric name in one place (DESIGN section 6), the readiness and
//! progress status the engine publishes, and the HTTP server that exposes them.
//! Depends on prometheus and tokio networking; the engine only calls the typed handles here.

mod names;
pub mod progress;
mod series;
pub mod server;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use prometheus::{GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

pub use names::*;
pub use series::{InputSeries, TaskSeries};

/// The process's metrics.
pub struct Metrics {
    pub registry: Registry,
    pub records_consumed: IntCounterVec,
    pub records_produced: IntCounterVec,
    pub consumer_lag: IntGaugeVec,
    pub watermark: GaugeVec,
    pub watermark_delay: GaugeVec,
    pub late_records: IntCounterVec,
    pub dead_letter_records: IntCounterVec,
    pub transactions: IntCounterVec,
    pub transaction_duration: Histogram,
    pub state_entries: IntGaugeVec,
    pub state_bytes: IntGaugeVec,
    pub restore_records: IntCounterVec,
    pub restore_duration: HistogramVec,
    pub rebalances: IntCounterVec,
    pub end_to_end_latency: HistogramVec,
    pub assigned_partitions: IntGaugeVec,
    /// 1 when /readyz answers 200; refreshed at every scrape.
    pub ready: IntGauge,
    /// Runs of the engine ended by a fault and started again in-process, by cause; and the
    /// end of trying (`gave_up`, `duplicate_instance`).
    pub recoveries: IntCounterVec,
    /// State directories moved aside and rebuilt from the changelogs, by reason.
    pub state_rebuilds: IntCounterVec,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn int_gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<GaugeVec> {
    let g = GaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

/// A collected metric's labels as (name, value), sorted by name (as the registry sorts them).
fn label_pairs(m: &prometheus::proto::Metric) -> Vec<(String, String)> {
    m.get_label().iter().map(|l| (l.name().to_string(), l.value().to_string())).collect()
}

fn label_map(pairs: &[(String, String)]) -> std::collections::HashMap<&str, &str> {
    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Latency buckets from 1 ms to about 10 minutes.
fn latency_buckets() -> Vec<f64> {
    vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0]
}

impl Metrics {
    pub fn new() -> prometheus::Result<Metrics> {
        let r = Registry::new();
        #[cfg(target_os = "linux")]
        r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        let transaction_duration = Histogram::with_opts(
            HistogramOpts::new(TRANSACTION_DURATION, "Time to commit one transaction (produce flush, offsets, commit).")
                .buckets(latency_buckets()),
        )?;
        r.register(Box::new(transaction_duration.clone()))?;
        let restore_duration = HistogramVec::new(
            HistogramOpts::new(RESTORE_DURATION, "Time to restore one task's state from sled and the changelog.")
                .buckets(latency_buckets()),
            &["query"],
        )?;
        r.register(Box::new(restore_duration.clone()))?;
        let end_to_end_latency = HistogramVec::new(
            HistogramOpts::new(
                END_TO_END_LATENCY,
                "Commit time minus the event time of emitted rows (clock=event; a window's end for windowed results) or minus the Kafka timestamp of input records (clock=kafka).",
            )
            .buckets(latency_buckets()),
            &["query", "clock"],
        )?;
        r.register(Box::new(end_to_end_latency.clone()))?;
        let ready = IntGauge::new(READY, "1 when the instance has joined its group and restored every assigned task (/readyz), else 0.")?;
        r.register(Box::new(ready.clone()))?;
        let m = Metrics {
            records_consumed: counter(&r, RECORDS_CONSUMED, "Records read from source topics.", &["topic", "partition"])?,
            records_produced: counter(
                &r,
                RECORDS_PRODUCED,
                "Records written, by topic (sinks, dead-letter, late, changelog).",
                &["query", "topic"],
            )?,
            consumer_lag: int_gauge(
                &r,
                CONSUMER_LAG,
                "Last stable offset minus the committed offset, per assigned partition.",
                &["topic", "partition"],
            )?,
            watermark: gauge(&r, WATERMARK, "Event-time watermark of a query's task, Unix seconds.", &["query", "partition"])?,
            watermark_delay: gauge(&r, WATERMARK_DELAY, "Wall clock minus the watermark, seconds.", &["query", "partition"])?,
            late_records: counter(&r, LATE_RECORDS, "Records dropped because every window they belong to had closed.", &["query"])?,
            dead_letter_records: counter(
                &r,
                DEAD_LETTER_RECORDS,
                "Records that could not be decoded (outcome: dead_lettered, skipped).",
                &["topic", "outcome"],
            )?,
            transactions: counter(&r, TRANSACTIONS, "Commit cycles by outcome (committed, aborted).", &["outcome"])?,
            transaction_duration,
            state_entries: int_gauge(&r, STATE_ENTRIES, "Live state entries of an operator's task.", &["query", "operator", "partition"])?,
            state_bytes: int_gauge(
                &r,
                STATE_BYTES,
                "Approximate bytes of an operator task's live state.",
                &["query", "operator", "partition"],
            )?,
            restore_records: counter(&r, RESTORE_RECORDS, "State entries restored from sled and the changelog.", &["query"])?,
            restore_duration,
            rebalances: counter(
                &r,
                REBALANCES,
                "Consumer group rebalances this instance took part in (outcome: assigned, revoked, lost).",
                &["outcome"],
            )?,
            end_to_end_latency,
            assigned_partitions: int_gauge(&r, ASSIGNED_PARTITIONS, "Source partitions assigned to this instance.", &["topic"])?,
            ready,
            recoveries: counter(
                &r,
                RECOVERIES,
                "Runs of the engine ended by a fault, by outcome: the cause recovered from in-process (transaction_timeout, producer_failed, consumer_failed, broker_unavailable, restore_stalled, storage_full, state_failed) or why the process exits (gave_up, duplicate_instance).",
                &["outcome"],
            )?,
            state_rebuilds: counter(
                &r,
                STATE_REBUILDS,
                "State rebuilt from the changelogs, by reason: a directory that did not open and was moved aside (open_failed), a tree that could not be read (tree_damaged).",
                &["reason"],
            )?,
            registry: r,
        };
        // Known label values start at zero, so rates and alerts see them before they happen.
        for outcome in ["committed", "aborted"] {
            m.transactions.with_label_values(&[outcome]);
        }
        for outcome in ["assigned", "revoked", "lost"] {
            m.rebalances.with_label_values(&[outcome]);
        }
        for outcome in [
            "transaction_timeout",
            "producer_failed",
            "consumer_failed",
            "broker_unavailable",
            "restore_stalled",
            "storage_full",
            "state_failed",
            "gave_up",
            "duplicate_instance",
        ] {
            m.recoveries.with_label_values(&[outcome]);
        }
        m.state_rebuilds.with_label_values(&["open_failed"]);
        m.state_rebuilds.with_label_values(&["tree_damaged"]);
        Ok(m)
    }

    /// Sets every watermark delay to now − its watermark, so the delay keeps growing between
    /// commits when the watermark is stuck (an idle pipeline does not commit).
    pub fn refresh_watermark_delays(&self, now_seconds: f64) {
        use prometheus::core::Collector;
        let mut live = std::collections::BTreeSet::new();
        for family in self.watermark.collect() {
            for m in family.get_metric() {
                let pairs = label_pairs(m);
                if let Ok(delay) = self.watermark_delay.get_metric_with(&label_map(&pairs)) {
                    delay.set(now_seconds - m.get_gauge().get_value());
                }
                live.insert(pairs);
            }
        }
        for family in self.watermark_delay.collect() {
            for m in family.get_metric() {
                let pairs = label_pairs(m);
                if !live.contains(&pairs) {
                    let _ = self.watermark_delay.remove(&label_map(&pairs));
                }
            }
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Health and readiness, as the engine reports them.
#[derive(Default)]
pub struct Status {
    /// The engine has joined the group and has no task left to restore.
    ready: AtomicBool,
    /// Tasks currently restoring.
    restoring: AtomicUsize,
    /// Set when the engine stops for good.
    stopped: AtomicBool,
    /// Why the engine is between two runs (a fault it is recovering from), if it is.
    recovering: Mutex<Option<&'static str>>,
    /// Per-query progress (Spark's lastProgress and recentProgress), updated at every commit.
    pub progress: Mutex<progress::Progress>,
}

impl Status {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
            && self.restoring.load(Ordering::Acquire) == 0
            && !self.is_stopped()
            && self.recovering().is_none()
    }
    /// A run of the engine ended with `cause`: not ready until a new run is assigned and
    /// restored (the run's restore counts start over).
    pub fn set_recovering(&self, cause: &'static str) {
        self.ready.store(false, Ordering::Release);
        self.restoring.store(0, Ordering::Release);
        if let Ok(mut r) = self.recovering.lock() {
            *r = Some(cause);
        }
    }
    /// A new run of the engine has started.
    pub fn clear_recovering(&self) {
        if let Ok(mut r) = self.recovering.lock() {
            *r = None;
        }
    }
    pub fn recovering(&self) -> Option<&'static str> {
        self.recovering.lock().ok().and_then(|r| *r)
    }
    pub fn restoring(&self, delta: isize) {
        if delta >= 0 {
            self.restoring.fetch_add(delta as usize, Ordering::AcqRel);
        } else {
            self.restoring.fetch_sub(delta.unsigned_abs(), Ordering::AcqRel);
        }
    }
    pub fn set_stopped(&self) {
        self.stopped.store(true, Ordering::Release);
    }
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_delays_follow_the_clock_and_their_watermarks() {
        let m = Metrics::new().unwrap();
        m.watermark.with_label_values(&["q", "3"]).set(100.0);
        m.watermark_delay.with_label_values(&["q", "3"]).set(1.0);
        m.watermark_delay.with_label_values(&["q", "4"]).set(1.0);
        m.refresh_watermark_delays(160.5);
        assert_eq!(m.watermark_delay.with_label_values(&["q", "3"]).get(), 60.5);
        let text = m.render();
        assert!(!text.contains(r#"eddy_watermark_delay_seconds{partition="4""#), "a delay without a watermark is dropped:\n{text}");
        assert!(text.contains("eddy_ready 0"));
        assert!(text.contains(r#"eddy_transactions_total{outcome="aborted"} 0"#), "known outcomes start at 0");
    }
}
