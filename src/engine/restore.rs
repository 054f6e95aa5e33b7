//! Restore: rebuild a task's state from its sled tree, then replay its changelog partition
//! from the offset sled recorded to the end (read_committed). What it replays goes back to
//! sled through the state writer's queue, so a task is ready as fast as the changelog can be
//! read. A tree that may have missed compacted-away tombstones is wiped and rebuilt.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use std::sync::Arc;

use super::events::{InternalEvent, StateTreeDamaged};
use super::EngineError;
use crate::metrics::Metrics;
use crate::runtime::task::QueryTask;
use crate::state::{Changes, StateWriter};

/// Trees whose last write is older than this are rebuilt from the whole changelog when the
/// changelog moved on without them: by then its tombstones may have been compacted away
/// (changelog topics keep tombstones for a day).
const STALE_AFTER: Duration = Duration::from_secs(12 * 3600);
const CHUNK: usize = 10_000;

/// What a restore did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Restored {
    pub from_sled: u64,
    pub from_changelog: u64,
    pub wiped: bool,
}

/// Reads changelog partitions.
pub struct Restorer {
    consumer: BaseConsumer,
    timeout: Duration,
    stall: Duration,
    metrics: Arc<Metrics>,
}

impl Restorer {
    pub fn new(cfg: &ClientConfig, stall: Duration, metrics: Arc<Metrics>) -> Result<Restorer, EngineError> {
        let consumer = cfg.create().map_err(|e| EngineError::kafka("cannot create the restore consumer", e))?;
        Ok(Restorer { consumer, timeout: Duration::from_secs(30), stall, metrics })
    }

    /// Restores `task` (which must be empty) from its tree and `changelog`'s partition.
    pub fn restore(&self, task: &mut QueryTask, changelog: &str, writer: &StateWriter) -> Result<Restored, EngineError> {
        let Some(tree) = task.tree.clone() else { return Ok(Restored::default()) };
        // Earlier writes to this tree (a partition revoked and assigned again) land first.
        writer.drain_tree(&tree)?;
        let partition = task.partition;
        let (low, high) = self
            .consumer
            .fetch_watermarks(changelog, partition, self.timeout)
            .map_err(|e| EngineError::kafka(format!("cannot read the offsets of changelog {changelog}[{partition}]"), e))?;
        // A tree whose bookkeeping or entries cannot be read is damaged: it is rebuilt from
        // the whole changelog (Kafka holds every byte of it).
        let damaged = |what: String| StateTreeDamaged { tree: tree.name(), what: &what }.emit(&self.metrics);
        let (stored, written_at) = match (tree.changelog_offset(), tree.written_at_ms()) {
            (Ok(s), Ok(w)) => (s, w),
            (Err(e), _) | (_, Err(e)) => {
                damaged(e.to_string());
                (None, None)
            }
        };
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let stale = written_at.is_some_and(|t| now_ms - t > STALE_AFTER.as_millis() as i64);
        let mut wipe = match stored {
            None => !tree.is_empty(),
            Some(s) => s < low || s > high || (s < high && stale),
        };
        if wipe {
            tracing::info!(
                tree = tree.name(),
                "state tree {} is behind its changelog beyond what compaction keeps, or damaged; rebuilding it from the changelog",
                tree.name()
            );
            tree.clear()?;
        }
        let tree_name = tree.name().to_string();
        let mut result = Restored { wiped: wipe, ..Restored::default() };
        match tree.for_each(|k, v| task.restore(k, Some(v)).map_err(|source| EngineError::Restore { tree: tree_name.clone(), source })) {
            Ok(n) => result.from_sled = n,
            Err(e @ (EngineError::Restore { .. } | EngineError::State(_))) => {
                damaged(e.to_string());
                task.clear();
                tree.clear()?;
                wipe = true;
                result = Restored { wiped: true, ..Restored::default() };
            }
            Err(e) => return Err(e),
        }
        let from = if wipe { low } else { stored.unwrap_or(low).max(low) };
        if from >= high {
            return Ok(result);
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(changelog, partition, Offset::Offset(from))
            .map_err(|e| EngineError::kafka("cannot build the restore assignment", e))?;
        self.consumer.assign(&tpl).map_err(|e| EngineError::kafka(format!("cannot assign changelog {changelog}[{partition}]"), e))?;
        let mut chunk: Changes = Vec::with_capacity(CHUNK);
        let mut position = from;
        let mut last_progress = Instant::now();
        let outcome = loop {
            match self.consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    if result.from_changelog.is_multiple_of(4096) {
                        last_progress = Instant::now();
                    }
                    position = m.offset() + 1;
                    let Some(key) = m.key() else { continue };
                    if let Err(source) = task.restore(key, m.payload()) {
                        break Err(EngineError::Restore { tree: tree_name.clone(), source });
                    }
                    chunk.push((key.to_vec(), m.payload().map(<[u8]>::to_vec)));
                    result.from_changelog += 1;
                    if chunk.len() >= CHUNK {
                        if let Err(e) = writer.apply(&tree, std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)), None) {
                            break Err(e.into());
                        }
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {
                    // The position after EOF is past any trailing transaction marker.
                    if let Ok(pos) = self.consumer.position() {
                        if let Some(Offset::Offset(o)) = pos.find_partition(changelog, partition).map(|e| e.offset()) {
                            position = position.max(o);
                        }
                    }
                    break Ok(());
                }
                Some(Err(e)) => break Err(EngineError::kafka(format!("cannot read changelog {changelog}[{partition}]"), e)),
                None => {
                    if last_progress.elapsed() > self.stall {
                        break Err(EngineError::RestoreStalled { topic: changelog.to_string(), partition, seconds: self.stall.as_secs() });
                    }
                }
            }
        };
        let _ = self.consumer.unassign();
        outcome?;
        // The offset goes with the last chunk: a crash before it leaves an older offset.
        writer.apply(&tree, chunk, Some(position))?;
        Ok(result)
    }
}
