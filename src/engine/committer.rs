//! The committer thread: commits a sealed cycle's transaction (its input offsets, then
//! `commit_transaction`) while the engine thread reads and processes the next cycle. A
//! transactional producer has one transaction at a time, so what the next cycle sends waits
//! in memory ([`Held`]) until this commit is done; then it opens the next transaction. See
//! docs/architecture.md ("The commit cycle, overlapped") for the rule. Part of the engine;
//! depends on the Kafka producer.

use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::TopicPartitionList;

use super::emit::Txn;
use super::ids::{InputId, TaskId};
use crate::kafka::producer::Producer;
use crate::kafka::{classify, ErrorClass};
use crate::runtime::{OutKind, Outgoing};
use crate::state::Changes;

/// How a commit ended.
pub type CommitResult = Result<(), CommitError>;

/// Why a commit did not happen.
#[derive(Debug)]
pub enum CommitError {
    /// A step of the commit failed: which, and its error.
    Kafka(&'static str, KafkaError),
    /// Fault injection (`--inject-abort-every`): the commit was refused on purpose.
    Injected(String),
}

fn stopped() -> CommitError {
    CommitError::Kafka("the committer thread has stopped", KafkaError::Canceled)
}

/// How long an injected failure keeps its commit "in flight", so that the next cycle is
/// processing (and holding records) when it fails.
const INJECTED_FAILURE_AFTER: Duration = Duration::from_millis(50);

struct Job {
    offsets: TopicPartitionList,
    group: Option<ConsumerGroupMetadata>,
    /// Retries stop here: past the transaction timeout the coordinator aborts anyway.
    retry_for: Duration,
    /// Fault injection: fail this commit, after its records are on the broker.
    inject: Option<String>,
    reply: SyncSender<CommitResult>,
}

/// The thread and its queue (one job at a time: the engine waits for each before the next).
pub struct Committer {
    tx: Option<Sender<Job>>,
    handle: Option<JoinHandle<()>>,
}

impl Committer {
    pub fn start(producer: Arc<Producer>) -> Committer {
        let (tx, rx) = mpsc::channel::<Job>();
        let handle = std::thread::Builder::new()
            .name("eddy-committer".into())
            .spawn(move || {
                for job in rx {
                    let _ = job.reply.send(commit(&producer, &job));
                }
            })
            .ok();
        Committer { tx: Some(tx), handle }
    }

    /// Starts committing the open transaction, with `offsets` for `group` when there are any.
    /// `inject` fails the commit on purpose (fault injection).
    pub fn submit(
        &self,
        offsets: TopicPartitionList,
        group: Option<ConsumerGroupMetadata>,
        retry_for: Duration,
        inject: Option<String>,
    ) -> Receiver<CommitResult> {
        let (reply, rx) = mpsc::sync_channel(1);
        let job = Job { offsets, group, retry_for, inject, reply };
        // A stopped thread cannot commit: the reply says so at once.
        let unsent = match &self.tx {
            Some(tx) => tx.send(job).err().map(|mpsc::SendError(job)| job),
            None => Some(job),
        };
        if let Some(job) = unsent {
            let _ = job.reply.send(Err(stopped()));
        }
        rx
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn commit(producer: &Producer, job: &Job) -> CommitResult {
    if let Some(why) = &job.inject {
        // The worst case: the cycle's records are on the broker when it fails.
        let _ = producer.flush();
        std::thread::sleep(INJECTED_FAILURE_AFTER);
        return Err(CommitError::Injected(why.clone()));
    }
    if let Some(group) = &job.group {
        if job.offsets.count() > 0 {
            retry(job.retry_for, || producer.send_offsets(&job.offsets, group))
                .map_err(|e| CommitError::Kafka("cannot add the input offsets to the transaction", e))?;
        }
    }
    retry(job.retry_for, || producer.commit()).map_err(|e| CommitError::Kafka("cannot commit the transaction", e))
}

/// Retries a transactional call while its error is retriable (rdkafka's guidance), for at
/// most `limit`: past the transaction timeout the coordinator aborts the transaction anyway,
/// and the run ends for the supervisor to start again.
pub fn retry<T>(limit: Duration, mut f: impl FnMut() -> Result<T, KafkaError>) -> Result<T, KafkaError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(50);
    let mut attempt = 0;
    loop {
        match f() {
            Err(e) if classify(&e) == ErrorClass::Retry && started.elapsed() + delay < limit => {
                tracing::debug!(error = %e, attempt, "retrying after a transient error: {e}");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(2));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A sealed cycle: everything its commit decides.
pub struct Sealed {
    /// The commit's outcome, from the committer thread (None: already committed inline).
    pub reply: Option<Receiver<CommitResult>>,
    /// Its transaction's counters (open until the commit is done).
    pub txn: Txn,
    /// Per input: the offset it commits.
    pub offsets: Vec<(InputId, i64)>,
    /// Per task: the state changes for sled once Kafka has them.
    pub pending: Vec<(TaskId, Changes)>,
    pub sealed_at: Instant,
    pub process_time: Duration,
    pub produce_time: Duration,
}

impl Sealed {
    /// Waits for the commit's outcome.
    pub fn wait(&mut self) -> CommitResult {
        match self.reply.take() {
            None => Ok(()),
            Some(rx) => rx.recv().unwrap_or_else(|_| Err(stopped())),
        }
    }

    /// The outcome when it is in, without waiting.
    pub fn try_result(&mut self) -> Option<CommitResult> {
        let rx = self.reply.as_ref()?;
        match rx.try_recv() {
            Ok(r) => {
                self.reply = None;
                Some(r)
            }
            Err(mpsc::TryRecvError::Empty) => None,
            Err(mpsc::TryRecvError::Disconnected) => {
                self.reply = None;
                Some(Err(stopped()))
            }
        }
    }
}

/// A record the next cycle sent while the previous cycle's commit was in flight.
#[derive(Debug)]
pub struct Held {
    topic: Box<str>,
    partition: Option<i32>,
    key: Option<Box<[u8]>>,
    payload: Option<Box<[u8]>>,
    headers: Vec<(Box<str>, Box<[u8]>)>,
    timestamp: Option<i64>,
    slot: usize,
    kind: OutKind,
}

impl Held {
    pub fn of(r: &Outgoing<'_>) -> Held {
        Held {
            topic: r.topic.into(),
            partition: r.partition,
            key: r.key.map(Into::into),
            payload: r.payload.map(Into::into),
            headers: r.headers.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
            timestamp: r.timestamp,
            slot: r.slot,
            kind: r.kind,
        }
    }

    /// Hands the record, as it was, to `f`.
    pub fn with<T>(&self, f: impl FnOnce(&Outgoing<'_>) -> T) -> T {
        let headers: Vec<(&str, &[u8])> = self.headers.iter().map(|(k, v)| (&**k, &**v)).collect();
        f(&Outgoing {
            topic: &self.topic,
            partition: self.partition,
            key: self.key.as_deref(),
            payload: self.payload.as_deref(),
            headers: &headers,
            timestamp: self.timestamp,
            slot: self.slot,
            kind: self.kind,
        })
    }
}
