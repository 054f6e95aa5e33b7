//! Metric names: a contract with dashboards, alerts and users' rules. Add, never rename.

pub const RECORDS_CONSUMED: &str = "eddy_records_consumed_total";
pub const RECORDS_PRODUCED: &str = "eddy_records_produced_total";
pub const CONSUMER_LAG: &str = "eddy_consumer_lag_records";
pub const WATERMARK: &str = "eddy_watermark_timestamp_seconds";
pub const WATERMARK_DELAY: &str = "eddy_watermark_delay_seconds";
pub const LATE_RECORDS: &str = "eddy_late_records_total";
pub const DEAD_LETTER_RECORDS: &str = "eddy_dead_letter_records_total";
pub const TRANSACTIONS: &str = "eddy_transactions_total";
pub const TRANSACTION_DURATION: &str = "eddy_transaction_duration_seconds";
pub const STATE_ENTRIES: &str = "eddy_state_entries";
pub const STATE_BYTES: &str = "eddy_state_bytes";
pub const RESTORE_RECORDS: &str = "eddy_restore_records_total";
pub const RESTORE_DURATION: &str = "eddy_restore_duration_seconds";
pub const REBALANCES: &str = "eddy_rebalances_total";
pub const END_TO_END_LATENCY: &str = "eddy_end_to_end_latency_seconds";
pub const ASSIGNED_PARTITIONS: &str = "eddy_assigned_partitions";
pub const READY: &str = "eddy_ready";
pub const RECOVERIES: &str = "eddy_recoveries_total";
pub const STATE_REBUILDS: &str = "eddy_state_rebuilds_total";
