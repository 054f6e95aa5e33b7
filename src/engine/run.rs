//! Start-up (topics, state, clients), the main loop, and an orderly shutdown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Statistics, TopicPartitionList};

use super::core::{Engine, EngineParts, QueryRuntime};
use super::ids::TopicId;
use super::restore::Restorer;
use super::source::{TopicKind, TopicRuntime};
use super::table::TableRuntime;
use super::{EngineError, RunOptions, RunSummary};
use crate::config::{ProcessingGuarantee, StartFrom};
use crate::kafka::admin::{changelog_spec, output_spec, repartition_spec, Admin, TopicSpec};
use crate::kafka::client;
use crate::kafka::consumer::{GroupContext, RebalanceHandler};
use crate::kafka::producer::Producer;
use crate::kafka::{classify, ErrorClass};
use crate::metrics::{Metrics, Status};
use crate::names::{changelog_topic, repartition_topic as repartition_topic_for};
use crate::pipeline::Pipeline;
use crate::query::LiveTables;
use crate::sql::{Exchange, PlanBody};
use crate::state::StateStore;

/// Records handled between two looks at the commit clock.
const BATCH: usize = 1024;

/// Hands rebalances to the engine.
pub struct EngineHandle {
    engine: Mutex<Engine>,
    /// Every source starts from the latest offset when the group has none.
    latest: bool,
    /// The engine's assignment epoch, readable without its lock: each polled record is
    /// stamped with it (see [`Engine::is_current`]).
    epoch: AtomicU64,
}

impl EngineHandle {
    fn lock(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl RebalanceHandler for EngineHandle {
    fn on_revoke(&self, consumer: &BaseConsumer<GroupContext<Self>>, partitions: &TopicPartitionList, lost: bool) {
        let mut e = self.lock();
        let result = e.revoke(consumer, partitions, lost);
        self.epoch.store(e.assignment_epoch, Ordering::Release);
        if let Err(err) = result {
            e.fatal.get_or_insert(err);
        }
    }

    fn on_assign(&self, consumer: &BaseConsumer<GroupContext<Self>>, partitions: &TopicPartitionList) {
        // Before the assignment marks the engine ready, so a ready engine shows its lag.
        let lags = self.seed_lag(consumer, partitions);
        let mut e = self.lock();
        let result = e.assign(partitions, &lags);
        self.epoch.store(e.assignment_epoch, Ordering::Release);
        if let Err(err) = result {
            e.fatal.get_or_insert(err);
        }
    }

    fn on_stats(&self, stats: &Statistics) {
        let e = self.lock();
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                if *p < 0 || !part.desired {
                    continue;
                }
                // Before a partition's first record, the group's committed offset as the consumer fetched it.
                let fetched = (part.committed_offset >= 0).then_some(part.committed_offset);
                // Only for a partition still assigned: a revoked one has no series left.
                let Some(input) = e.input(topic, *p) else { continue };
                if let Some(committed) = input.committed.or(fetched) {
                    // Lag against the last stable offset: transaction markers occupy offsets.
                    let end = if part.ls_offset >= 0 { part.ls_offset } else { part.hi_offset };
                    if end >= 0 {
                        input.series.set_lag(end - committed);
                    }
                }
            }
        }
    }
}

impl EngineHandle {
    /// Lag of every newly assigned partition from the start, before librdkafka's first
    /// statistics report (5 s) and for partitions with no records yet: the end offset (the
    /// last stable offset, for a read_committed consumer) minus the group's committed offset,
    /// or minus the start when nothing is committed.
    fn seed_lag(&self, consumer: &BaseConsumer<GroupContext<Self>>, partitions: &TopicPartitionList) -> HashMap<(String, i32), i64> {
        let timeout = Duration::from_secs(5);
        let committed = consumer.committed_offsets(partitions.clone(), timeout).ok();
        let mut lags = HashMap::new();
        for el in partitions.elements() {
            let (topic, p) = (el.topic(), el.partition());
            let Ok((low, high)) = consumer.fetch_watermarks(topic, p, timeout) else { continue };
            let from = match committed.as_ref().and_then(|c| c.find_partition(topic, p)).map(|e| e.offset()) {
                Some(rdkafka::Offset::Offset(o)) => o,
                _ if self.latest => high,
                _ => low,
            };
            lags.insert((topic.to_string(), p), high - from);
        }
        lags
    }
}

/// How a pipeline's queries map onto partitions, given its sources' partition counts.
pub struct Layout {
    /// Per query: partitions of its operator stage (its tasks, its changelog).
    pub operator_partitions: Vec<usize>,
    /// Per query: partitions of its repartition topics, when it has any.
    pub repartition_partitions: Vec<Option<usize>>,
    /// Every topic eddy writes: changelogs, repartition topics, sinks, dead letters.
    pub specs: Vec<TopicSpec>,
}

/// Plans partition counts and internal topics.
pub fn layout(pipeline: &Pipeline, source_partitions: impl Fn(&str) -> usize) -> Result<Layout, EngineError> {
    let config = pipeline.config();
    let mut out = Layout { operator_partitions: Vec::new(), repartition_partitions: Vec::new(), specs: Vec::new() };
    for (qi, q) in pipeline.queries.iter().enumerate() {
        let counts: Vec<usize> = input_partitions(pipeline, qi, &out.operator_partitions, &source_partitions);
        let repartition = q.inputs.iter().find_map(|i| match &i.exchange {
            Exchange::Repartition { partitions, .. } => {
                Some(partitions.map_or_else(|| counts.iter().copied().max().unwrap_or(1), |p| p as usize))
            }
            Exchange::Local => None,
        });
        let operator = match repartition {
            Some(r) => r,
            None => {
                if counts.windows(2).any(|w| w[0] != w[1]) {
                    return Err(EngineError::Setup(format!(
                        "query {} joins {} ({} partitions) with {} ({} partitions) partition by partition, which needs equal counts: remove a partition_key to repartition instead",
                        q.name, q.inputs[0].scan.topic, counts[0], q.inputs[1].scan.topic, counts[1]
                    )));
                }
                counts.first().copied().unwrap_or(1)
            }
        };
        if q.is_stateful() {
            let why = format!("the changelog of query {} needs one partition per task", q.name);
            out.specs.push(changelog_spec(changelog_topic(&config.app, &q.name), operator, why));
        }
        if let Some(r) = repartition {
            for side in 0..q.inputs.len() {
                let why = format!("query {} re-keys its input through it", q.name);
                out.specs.push(repartition_spec(repartition_topic_for(&config.app, &q.name, side), r, why));
            }
        }
        let mut outputs = Vec::new();
        if q.feeds.is_none() {
            outputs.push((q.sink_topic.clone(), format!("sink of query {}", q.name)));
        }
        for input in &q.inputs {
            if let Some(src) = config.sources.get(&input.scan.source) {
                outputs.extend(src.dead_letter_topic.iter().map(|t| (t.clone(), format!("dead letters of source {}", input.scan.source))));
                outputs.extend(src.late_topic.iter().map(|t| (t.clone(), format!("late records of source {}", input.scan.source))));
            }
        }
        for (topic, why) in outputs {
            if !out.specs.iter().any(|s| s.name == topic) {
                out.specs.push(output_spec(topic, counts.first().copied().unwrap_or(1), why));
            }
        }
        out.operator_partitions.push(operator);
        out.repartition_partitions.push(repartition);
    }
    Ok(out)
}

/// Per side of query `qi`: how many partitions its rows come from — the source topic's, or
/// for a side fed by a stage of the same query, that stage's operator partitions (laid out
/// before, since stages come before the stages and queries they feed).
pub fn input_partitions(
    pipeline: &Pipeline,
    qi: usize,
    operator_partitions: &[usize],
    source_partitions: &impl Fn(&str) -> usize,
) -> Vec<usize> {
    let q = &pipeline.queries[qi];
    q.inputs
        .iter()
        .enumerate()
        .map(|(side, i)| match &i.scan.stage {
            // Every stage that feeds this side (several for a UNION ALL) has its partitions.
            Some(_) => feeders(pipeline, &q.name, side).map(|s| operator_partitions.get(s).copied().unwrap_or(1)).sum::<usize>().max(1),
            None => source_partitions(&i.scan.topic),
        })
        .collect()
}

/// The indices of the stages that feed input `side` of query `name`, in pipeline order.
fn feeders<'p>(pipeline: &'p Pipeline, name: &'p str, side: usize) -> impl Iterator<Item = usize> + 'p {
    pipeline
        .queries
        .iter()
        .enumerate()
        .filter(move |(_, s)| s.feeds.as_ref().is_some_and(|f| f.query == name && f.side == side))
        .map(|(i, _)| i)
}

/// Every topic the pipeline writes (for brokers that cannot create topics on request).
pub fn required_topics(pipeline: &Pipeline, source_partitions: impl Fn(&str) -> usize) -> Vec<TopicSpec> {
    layout(pipeline, source_partitions).map(|l| l.specs).unwrap_or_default()
}

/// What one run of the engine needs (recovery.rs starts a new run after a fault).
pub struct RunContext<'a> {
    pub pipeline: &'a Arc<Pipeline>,
    pub opts: &'a RunOptions,
    pub shutdown: &'a AtomicBool,
    pub metrics: &'a Arc<Metrics>,
    pub status: &'a Arc<Status>,
    /// The state store, opened once for the process.
    pub store: &'a StateStore,
    /// Where the run publishes its result tables for queries.
    pub live: &'a Arc<LiveTables>,
}

/// One run of the engine: new clients, a new group membership, every task restored from
/// sled and the changelogs; until `shutdown` is set, the input is consumed (`stop_at_end`),
/// or a failure. The summary counts what this run did, whatever its end.
pub fn run_once(cx: &RunContext<'_>) -> (Result<(), EngineError>, RunSummary) {
    let mut summary = RunSummary::default();
    let result = run_inner(cx, &mut summary);
    (result, summary)
}

fn run_inner(cx: &RunContext<'_>, summary_out: &mut RunSummary) -> Result<(), EngineError> {
    let RunContext { pipeline, opts, shutdown, metrics, status, store, live } = *cx;
    let (pipeline, opts, metrics, status) = (pipeline.clone(), opts.clone(), metrics.clone(), status.clone());
    let config = pipeline.config();
    let exactly_once = config.processing_guarantee == ProcessingGuarantee::ExactlyOnce;
    let admin = Admin::new(&client::admin(config))?;
    let mut partitions: HashMap<String, usize> = HashMap::new();
    let mut read_topics: Vec<&str> =
        pipeline.queries.iter().flat_map(|q| q.inputs.iter().filter(|i| i.scan.stage.is_none()).map(|i| i.scan.topic.as_str())).collect();
    read_topics.extend(pipeline.queries.iter().filter_map(|q| match &q.body {
        PlanBody::TableJoin(t) => Some(t.table.topic.as_str()),
        _ => None,
    }));
    for topic in read_topics {
        if !partitions.contains_key(topic) {
            partitions.insert(topic.to_string(), admin.require(topic)?);
        }
    }
    let source_partitions = |t: &str| partitions.get(t).copied().unwrap_or(1);
    let layout = layout(&pipeline, source_partitions)?;
    for spec in &layout.specs {
        if spec.config.is_empty() && admin.partitions(&spec.name)?.is_some() {
            // An output topic that exists is used as it is.
            continue;
        }
        admin.ensure(spec)?;
    }
    let transactional_id = client::transactional_id(&config.app, &opts.instance_id);
    let timeout = config.kafka.transaction_timeout.std().max(Duration::from_secs(30));
    let producer = Producer::new(&client::producer(config, &opts.instance_id, exactly_once), exactly_once, timeout)
        .map_err(|e| EngineError::kafka("cannot create the producer", e))?;
    if exactly_once {
        init_transactions(&producer, &transactional_id)?;
    }
    let stall = config.kafka.transaction_timeout.std() * 3 + Duration::from_secs(30);
    let restorer =
        Restorer::new(&client::plain_consumer(config, &format!("{}-{}-restore", config.app, opts.instance_id)), stall, metrics.clone())?;

    let mut topics = TopicRuntime::sources(&pipeline, source_partitions, &metrics)?;
    let mut tables: Vec<TableRuntime> = Vec::new();
    let mut queries = Vec::new();
    for (qi, q) in pipeline.queries.iter().enumerate() {
        let source_topic: Vec<TopicId> =
            q.inputs.iter().map(|i| TopicId(topics.iter().position(|t| *t.topic == *i.scan.topic).unwrap_or(0))).collect();
        let mut repartition = Vec::new();
        for side in 0..q.inputs.len() {
            repartition.push(layout.repartition_partitions[qi].map(|r| {
                topics.push(TopicRuntime {
                    topic: Arc::from(repartition_topic_for(&config.app, &q.name, side).as_str()),
                    partitions: r,
                    kind: TopicKind::Repartition { query: qi, side },
                });
                TopicId(topics.len() - 1)
            }));
        }
        let table = match &q.body {
            PlanBody::TableJoin(t) => {
                let existing = tables.iter().position(|x| x.name == t.table.source);
                Some(match existing {
                    Some(i) => i,
                    None => {
                        let src = config
                            .sources
                            .get(&t.table.source)
                            .ok_or_else(|| EngineError::Setup(format!("unknown table {}", t.table.source)))?;
                        let n = source_partitions(&t.table.topic);
                        let cfg = client::plain_consumer(config, &format!("{}-{}-table-{}", config.app, opts.instance_id, t.table.source));
                        let mut table = TableRuntime::open(&cfg, &t.table.source, src, &t.table, t.table_keys.clone(), n)?;
                        let started = std::time::Instant::now();
                        let loaded = table.load(n, stall)?;
                        tracing::info!(
                            table = %t.table.source,
                            records = loaded,
                            rows = table.len(),
                            rejected = table.rejected(),
                            "loaded table {} ({} rows from {loaded} records, {} undecodable) in {:?}",
                            t.table.source,
                            table.len(),
                            table.rejected(),
                            started.elapsed()
                        );
                        tables.push(table);
                        tables.len() - 1
                    }
                })
            }
            _ => None,
        };
        let upstreams = input_partitions(&pipeline, qi, &layout.operator_partitions, &source_partitions);
        // A side fed by a stage has no first-stage tasks over a source: the stage's tasks feed it.
        let counts: Vec<usize> = q.inputs.iter().zip(&upstreams).map(|(i, &n)| if i.scan.stage.is_some() { 0 } else { n }).collect();
        let source_topic: Vec<TopicId> = source_topic
            .iter()
            .zip(&repartition)
            .zip(&q.inputs)
            .map(|((&s, r), i)| if i.scan.stage.is_some() { r.unwrap_or(s) } else { s })
            .collect();
        let mut runtime =
            QueryRuntime::new(&config.app, Arc::new(q.clone()), layout.operator_partitions[qi], &counts, source_topic, repartition, table);
        runtime.upstreams = upstreams;
        if q.feeds.is_none() {
            runtime.encoder = sink_encoder(config, q)?;
        }
        queries.push(runtime);
    }
    // Each stage learns where its output goes: the next stage's repartition topic.
    for qi in 0..queries.len() {
        let Some(feed) = queries[qi].plan.feeds.clone() else { continue };
        let target = queries.iter().find(|d| d.plan.name == feed.query).and_then(|d| {
            let ti = (*d.repartition.get(feed.side)?)?;
            // Upstream watermarks are numbered across all the stages that feed the side.
            let offset: usize = feeders(&pipeline, &feed.query, feed.side)
                .take_while(|&s| s != qi)
                .map(|s| layout.operator_partitions.get(s).copied().unwrap_or(1))
                .sum();
            Some(super::core::FeedTarget {
                topic: topics[ti.0].topic.clone(),
                partitions: topics[ti.0].partitions,
                input: d.plan.inputs.get(feed.side)?.clone(),
                upstream_offset: offset,
                upstreams: *d.upstreams.get(feed.side)?,
            })
        });
        let Some(target) = target else {
            return Err(EngineError::Setup(format!("stage {} feeds {}, which does not read it", queries[qi].plan.name, feed.query)));
        };
        queries[qi].feed = Some(target);
    }
    for t in &topics {
        // Zero-valued series from the start, so rates and alerts see every source topic.
        if let TopicKind::Source { dead_letter_topic, .. } = &t.kind {
            let outcome = if dead_letter_topic.is_some() { "dead_lettered" } else { "skipped" };
            metrics.dead_letter_records.with_label_values(&[&t.topic, outcome]);
        }
    }
    let topic_names: Vec<String> = topics.iter().map(|t| t.topic.to_string()).collect();
    let start = if config.sources.values().all(|s| s.start_from == StartFrom::Latest) { StartFrom::Latest } else { StartFrom::Earliest };
    let engine = Engine::new(EngineParts {
        pipeline: pipeline.clone(),
        opts: opts.clone(),
        producer,
        restorer,
        store: store.clone(),
        admin,
        topics,
        tables: super::table::TableSet(tables),
        queries,
        transactional_id,
        metrics,
        status: status.clone(),
        live: live.clone(),
    });
    let handle = EngineHandle { engine: Mutex::new(engine), latest: start == StartFrom::Latest, epoch: AtomicU64::new(0) };
    let mut consumer_config = client::group_consumer(config, &opts.instance_id, exactly_once, start, live.advertised().as_deref());
    if opts.stop_at_end && !config.kafka.properties.contains_key("fetch.wait.max.ms") {
        // A bounded run asks the broker for each partition's end when it reaches it; that
        // request waits behind the fetch the broker holds open for up to fetch.wait.max.ms
        // (500 ms), once per partition end: a chain of stages reaches many ends.
        consumer_config.set("fetch.wait.max.ms", "20");
    }
    let consumer: BaseConsumer<GroupContext<EngineHandle>> = consumer_config
        .create_with_context(GroupContext { handler: handle })
        .map_err(|e| EngineError::kafka("cannot create the consumer", e))?;
    let topic_refs: Vec<&str> = topic_names.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_refs).map_err(|e| EngineError::kafka("cannot subscribe to the source topics", e))?;
    tracing::info!(app = %config.app, instance = %opts.instance_id, topics = ?topic_names, "joining consumer group {} as instance {}", config.app, opts.instance_id);

    let result = main_loop(&consumer, shutdown, &opts);
    // After a state failure draining and flushing fail the same way: the supervisor says it once.
    let state_failed = matches!(result, Err(EngineError::State(_)));
    let summary = {
        let mut e = consumer.context().handler.lock();
        e.failed = result.is_err();
        if result.is_ok() {
            if let Err(err) = e.advance() {
                tracing::warn!(error = %err, "could not fire windows while shutting down: {err}");
            }
            match e.commit(&consumer) {
                Ok(()) => e.purge_repartition_topics(true),
                Err(err) => tracing::error!(error = %err, "the final commit failed: {err}"),
            }
        }
        if let Err(err) = e.drain_state() {
            if !state_failed {
                tracing::warn!(error = %err, "state writes failed: {err}; the next start replays the changelog");
            }
        }
        e.summary.clone()
    };
    if let Err(e) = store.flush() {
        if !state_failed {
            tracing::warn!(error = %e, "flushing state to disk failed: {e}; it will be restored from the changelog");
        }
    }
    consumer.unsubscribe();
    drop(consumer);
    tracing::info!(
        records_in = summary.records_in,
        records_out = summary.records_out,
        commits = summary.commits,
        "stopped after {} records in, {} out, {} commits",
        summary.records_in,
        summary.records_out,
        summary.commits
    );
    *summary_out = summary;
    result
}

fn init_transactions(producer: &Producer, transactional_id: &str) -> Result<(), EngineError> {
    let mut attempt = 0;
    loop {
        match producer.init_transactions() {
            Ok(()) => return Ok(()),
            Err(e) if classify(&e) == ErrorClass::Retry && attempt < 10 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(200 * attempt));
            }
            Err(e) => {
                return Err(EngineError::kafka(
                    format!(
                        "cannot initialise transactions for transactional id {transactional_id} (does the broker support transactions?)"
                    ),
                    e,
                ))
            }
        }
    }
}

fn main_loop(consumer: &BaseConsumer<GroupContext<EngineHandle>>, shutdown: &AtomicBool, opts: &RunOptions) -> Result<(), EngineError> {
    let handle = &consumer.context().handler;
    loop {
        if shutdown.load(Ordering::Acquire) {
            return Ok(());
        }
        let wait = {
            let mut e = handle.lock();
            e.tick();
            // With a commit in flight, look again soon: its end releases the held records.
            let most = if e.committing() { Duration::from_millis(5) } else { Duration::from_millis(100) };
            e.time_to_commit().clamp(Duration::from_millis(1), most)
        };
        // Poll up to BATCH records, then hand them over as one batch per partition, taking
        // the engine's lock once (a rebalance callback inside a poll takes it too) and the
        // clock only around the one poll that may wait. Each record remembers the assignment
        // it was polled under: one polled before a rebalance that re-created its partition is
        // dropped (the consumer delivers it again).
        let mut polled_batch: Vec<(rdkafka::message::BorrowedMessage<'_>, u64)> = Vec::with_capacity(BATCH);
        let mut stop: Option<EngineError> = None;
        let polling = std::time::Instant::now();
        let mut next = consumer.poll(wait);
        handle.lock().progress.poll += polling.elapsed();
        let mut polls = 1;
        while let Some(polled) = next.take() {
            match polled {
                Ok(m) => polled_batch.push((m, handle.epoch.load(Ordering::Acquire))),
                Err(KafkaError::PartitionEOF(p)) => {
                    let mut e = handle.lock();
                    if let Some(f) = e.fatal.take() {
                        return Err(f);
                    }
                    // The partition's records so far must be counted before its end is noted.
                    let current: Vec<&rdkafka::message::BorrowedMessage<'_>> =
                        polled_batch.iter().filter(|(m, ep)| e.is_current(m.topic(), m.partition(), *ep)).map(|(m, _)| m).collect();
                    if let Err(err) = e.on_messages(&current) {
                        stop = Some(err);
                        break;
                    }
                    drop(current);
                    polled_batch.clear();
                    e.on_eof(consumer, p);
                }
                Err(KafkaError::MessageConsumptionFatal(code)) => {
                    let e = handle.lock();
                    // A generic fatal code stands for the client's fatal error: name that one.
                    let code = match (code, consumer.client().fatal_error()) {
                        (rdkafka::error::RDKafkaErrorCode::Fatal, Some((underlying, _))) => underlying,
                        _ => code,
                    };
                    return Err(e.consumer_fatal(KafkaError::MessageConsumptionFatal(code)));
                }
                Err(err) => tracing::warn!(error = %err, "consumer error: {err}"),
            }
            if polls < BATCH {
                polls += 1;
                next = consumer.poll(Duration::ZERO);
            }
        }
        if stop.is_none() && !polled_batch.is_empty() {
            let mut e = handle.lock();
            if let Some(f) = e.fatal.take() {
                return Err(f);
            }
            let current: Vec<&rdkafka::message::BorrowedMessage<'_>> =
                polled_batch.iter().filter(|(m, ep)| e.is_current(m.topic(), m.partition(), *ep)).map(|(m, _)| m).collect();
            if let Err(err) = e.on_messages(&current) {
                stop = Some(err);
            }
        }
        drop(polled_batch);
        if let Some(err) = stop {
            handle.lock().recover(err, consumer)?;
            continue;
        }
        let mut e = handle.lock();
        if let Some(f) = e.fatal.take() {
            return Err(f);
        }
        if let Err(err) = e.advance() {
            e.recover(err, consumer)?;
        }
        // A commit in flight completes here (its held records then open the next transaction).
        e.poll_commit(consumer)?;
        if e.commit_due() {
            e.commit_async(consumer)?;
        }
        if opts.stop_at_end && e.caught_up() {
            // The flush is only done once its commit went through: an aborted flush reloads
            // the saved watermarks, and the next round flushes again.
            if opts.flush_at_end && !e.all_finished() {
                e.finish_all();
                if let Err(err) = e.advance() {
                    e.recover(err, consumer)?;
                    continue;
                }
                e.commit(consumer)?;
            } else {
                return Ok(());
            }
        }
    }
}

/// The encoder of a query's sink, when its format is not JSON (the tasks' default).
fn sink_encoder(
    config: &crate::config::PipelineConfig,
    q: &crate::sql::QueryPlan,
) -> Result<Option<Arc<crate::formats::Encoder>>, EngineError> {
    let Some(sink) = config.sinks.get(&q.sink) else { return Ok(None) };
    if sink.format == crate::config::Format::Json {
        return Ok(None);
    }
    let columns: Vec<(&str, crate::types::DataType)> = q.output.iter().map(|c| (c.name.as_str(), c.data_type.clone())).collect();
    crate::formats::Encoder::for_sink(&q.sink, sink, &columns)
        .map(|e| Some(Arc::new(e)))
        .map_err(|e| EngineError::Setup(format!("sink {}: {e}", q.sink)))
}
