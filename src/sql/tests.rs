use super::*;
use crate::config::{EventTimeConfig, OutputMode, SourceKind};
use crate::time::{MICROS_PER_HOUR, MICROS_PER_MINUTE};
use crate::types::arrays::{rows_to_batch, ColumnReader};
use crate::types::{timestamp_type, window_type, DataType, Field, Schema, Value};

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("time", timestamp_type(), false),
        Field::new("action", DataType::Utf8, false),
        Field::new("id", DataType::Utf8, false),
        Field::new("amount", DataType::Float64, true),
        Field::new("qty", DataType::Int64, true),
    ])
}

struct Fixture {
    schema: Schema,
    event_time: EventTimeConfig,
    pk: Vec<String>,
    temps: Schema,
    temps_time: EventTimeConfig,
    temps_pk: Vec<String>,
    loads: Schema,
    loads_time: EventTimeConfig,
    loads_pk: Vec<String>,
    devices: Schema,
    devices_pk: Vec<String>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            schema: schema(),
            event_time: EventTimeConfig::Column("time".into()),
            pk: vec!["action".into()],
            temps: Schema::new(vec![
                Field::new("temp_location_id", DataType::Int64, false),
                Field::new("temp", DataType::Float64, false),
                Field::new("temp_taken_time", timestamp_type(), false),
            ]),
            temps_time: EventTimeConfig::Column("temp_taken_time".into()),
            temps_pk: vec!["temp_location_id".into()],
            loads: Schema::new(vec![
                Field::new("load_location_id", DataType::Int64, false),
                Field::new("load", DataType::Float64, false),
                Field::new("load_taken_time", timestamp_type(), false),
            ]),
            loads_time: EventTimeConfig::Column("load_taken_time".into()),
            loads_pk: vec!["load_location_id".into()],
            devices: Schema::new(vec![Field::new("id", DataType::Utf8, false), Field::new("owner", DataType::Utf8, false)]),
            devices_pk: vec!["id".into()],
        }
    }

    fn ctx(&self, mode: OutputMode, delay: Option<i64>) -> PlanContext<'_> {
        PlanContext {
            query_name: "q",
            sources: vec![
                SourceInfo {
                    name: "events",
                    topic: "events",
                    kind: SourceKind::Stream,
                    schema: &self.schema,
                    event_time: Some(&self.event_time),
                    watermark_delay: delay,
                    idle_timeout: None,
                    partition_key: Some(&self.pk),
                    stage: false,
                    primary_key: None,
                },
                SourceInfo {
                    name: "temps",
                    topic: "temps",
                    kind: SourceKind::Stream,
                    schema: &self.temps,
                    event_time: Some(&self.temps_time),
                    watermark_delay: Some(MICROS_PER_HOUR),
                    idle_timeout: None,
                    partition_key: Some(&self.temps_pk),
                    stage: false,
                    primary_key: None,
                },
                SourceInfo {
                    name: "loads",
                    topic: "loads",
                    kind: SourceKind::Stream,
                    schema: &self.loads,
                    event_time: Some(&self.loads_time),
                    watermark_delay: Some(2 * MICROS_PER_HOUR),
                    idle_timeout: None,
                    partition_key: Some(&self.loads_pk),
                    stage: false,
                    primary_key: None,
                },
                SourceInfo {
                    name: "devices",
                    topic: "devices",
                    kind: SourceKind::Table,
                    schema: &self.devices,
                    event_time: None,
                    watermark_delay: None,
                    idle_timeout: None,
                    partition_key: None,
                    stage: false,
                    primary_key: Some(&self.devices_pk),
                },
            ],
            sink: SinkInfo { name: "out", topic: "out", output_mode: mode, key: None, retention: None },
            repartition_partitions: None,
        }
    }

    fn plan(&self, sql: &str) -> Result<QueryPlan, SqlError> {
        plan_query(sql, &self.ctx(OutputMode::Append, Some(2 * MICROS_PER_HOUR)))
    }

    fn err(&self, sql: &str) -> SqlError {
        self.plan(sql).expect_err("should be rejected")
    }
}

const TUTORIAL: &str = "SELECT action, window.start AS window_start, window.end AS window_end, count(*) AS count
FROM events
GROUP BY action, window(time, '1 hour')";

#[test]
fn plans_the_tutorial_query() {
    let f = Fixture::new();
    let plan = f.plan(TUTORIAL).unwrap();
    let names: Vec<&str> = plan.output.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["action", "window_start", "window_end", "count"]);
    assert_eq!(plan.output[1].data_type, timestamp_type());
    assert_eq!(plan.output[3].data_type, DataType::Int64);
    assert_eq!(plan.key_columns, vec![0, 1, 2], "key = group columns in the output");
    let PlanBody::Aggregate(a) = &plan.body else { panic!("not an aggregate") };
    assert_eq!(a.window, Some(WindowKind::Fixed(crate::time::WindowSpec::tumbling(MICROS_PER_HOUR))));
    assert_eq!(plan.inputs[0].exchange, Exchange::Local);
    assert_eq!(a.aggregates.len(), 1);
    assert_eq!(a.aggregates[0].kind, AggregateKind::CountStar);
    assert_eq!(plan.scan().needed[..3], [true, true, false], "id is never decoded");
}

#[test]
fn unaliased_names_follow_spark() {
    let f = Fixture::new();
    let plan = f
        .plan("SELECT action, window.start, count(*), sum(amount), avg(qty), count(DISTINCT id), max(amount) - min(amount) FROM events GROUP BY action, window(time, '1 hour')")
        .unwrap();
    let names: Vec<&str> = plan.output.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["action", "window_start", "count(1)", "sum(amount)", "avg(qty)", "count(DISTINCT id)", "(max(amount) - min(amount))"]
    );
    let types: Vec<DataType> = plan.output.iter().map(|c| c.data_type.clone()).collect();
    assert_eq!(types[3..6], [DataType::Float64, DataType::Float64, DataType::Int64]);
}

#[test]
fn a_column_named_like_a_niladic_function_is_that_column() {
    let mut f = Fixture::new();
    f.schema = Schema::new(vec![Field::new("time", timestamp_type(), false), Field::new("user", DataType::Utf8, false)]);
    let plan = f.plan("SELECT user, count(*) AS n FROM events GROUP BY user, window(time, '1 hour')").unwrap();
    let names: Vec<&str> = plan.output.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["user", "n"]);
    assert_eq!(plan.output[0].data_type, DataType::Utf8);
}

#[test]
fn sliding_windows_and_having() {
    let f = Fixture::new();
    let plan = f
        .plan("SELECT action, window, count(*) AS n FROM events WHERE qty > 0 GROUP BY action, window(time, '10 minutes', '5 minutes') HAVING count(*) > 2")
        .unwrap();
    let PlanBody::Aggregate(a) = &plan.body else { panic!() };
    let Some(WindowKind::Fixed(w)) = a.window else { panic!("not a fixed window") };
    assert_eq!(w.size, 10 * MICROS_PER_MINUTE);
    assert_eq!(w.slide, 5 * MICROS_PER_MINUTE);
    assert!(a.having.is_some());
    assert!(plan.scan().filter.is_some());
    assert_eq!(plan.output[1].data_type, window_type());
    // HAVING reuses the select list's count(*)
    assert_eq!(a.aggregates.len(), 1);
}

#[test]
fn group_by_expression_matches_select_expression() {
    let f = Fixture::new();
    let plan = f.plan("SELECT action, upper(id) AS uid, count(*) FROM events GROUP BY action, upper(id), window(time, '1 hour')").unwrap();
    assert_eq!(plan.key_columns, vec![0, 1]);
    // ordinals and aliases in GROUP BY, as Spark allows
    f.plan("SELECT action, upper(id) AS uid, count(*) FROM events GROUP BY 1, uid, window(time, '1 hour')").unwrap();
}

#[test]
fn stateless_queries_keep_the_input_key() {
    let f = Fixture::new();
    let plan = f.plan("SELECT *, amount * 2 AS double_amount FROM events WHERE action = 'Open'").unwrap();
    assert!(matches!(plan.body, PlanBody::Stateless { .. }));
    assert_eq!(plan.output.len(), 6, "* is the schema's columns, not the metadata columns");
    assert!(plan.key_columns.is_empty());
}

/// Evaluates `e` over scan rows of `plan`'s first input.
fn eval(plan: &QueryPlan, e: &crate::expr::Scalar, rows: Vec<Vec<Value>>) -> Vec<Value> {
    let width = plan.scan().schema.len();
    let rows: Vec<Vec<Value>> = rows
        .into_iter()
        .map(|mut r| {
            r.resize(width, Value::Null);
            r
        })
        .collect();
    let batch = rows_to_batch(&plan.scan().arrow, &rows).unwrap();
    let out = e.eval(&batch).unwrap();
    let r = ColumnReader::new(out.as_ref());
    (0..out.len()).map(|i| r.value(i)).collect()
}

#[test]
fn timestamp_literals_and_intervals() {
    let f = Fixture::new();
    let plan = f
        .plan("SELECT time + INTERVAL '1' HOUR AS later, time - INTERVAL '10 minutes' AS earlier FROM events WHERE time >= '2016-07-26'")
        .unwrap();
    let PlanBody::Stateless { projection } = &plan.body else { panic!() };
    const T: i64 = 1_469_491_200_000_000;
    assert_eq!(eval(&plan, &projection[0], vec![vec![Value::Timestamp(T)]]), vec![Value::Timestamp(T + MICROS_PER_HOUR)]);
    assert_eq!(projection[1].data_type, timestamp_type());
    assert_eq!(eval(&plan, &projection[1], vec![vec![Value::Timestamp(T)]]), vec![Value::Timestamp(T - 10 * MICROS_PER_MINUTE)]);
    let filter = plan.scan().filter.clone().unwrap();
    assert_eq!(
        eval(&plan, &filter, vec![vec![Value::Timestamp(T)], vec![Value::Timestamp(T - 1)]]),
        vec![Value::Bool(true), Value::Bool(false)]
    );
}

#[test]
fn constant_expressions_fold() {
    let f = Fixture::new();
    let plan = f.plan("SELECT 1 + 2 AS three, upper('a') AS a, CAST(NULL AS BIGINT) AS n FROM events").unwrap();
    let PlanBody::Stateless { projection } = &plan.body else { panic!() };
    assert!(projection.iter().all(|p| p.is_constant()));
    assert_eq!(projection[0].text, "3", "folded at plan time");
    assert_eq!(eval(&plan, &projection[0], vec![vec![]]), vec![Value::Long(3)]);
    assert_eq!(eval(&plan, &projection[1], vec![vec![]]), vec![Value::str("A")]);
    assert_eq!(projection[2].data_type, DataType::Int64);
}

fn assert_rejected(f: &Fixture, sql: &str, needle: &str) -> SqlError {
    let e = f.err(sql);
    assert!(e.message.contains(needle), "for {sql}\nexpected \"{needle}\" in: {}", e.message);
    e
}

#[test]
fn rejects_what_a_stream_cannot_do() {
    let f = Fixture::new();
    let e = assert_rejected(&f, "SELECT * FROM events ORDER BY time", "no last row to sort");
    assert_eq!(e.position, Some((1, 31)), "points at the sort expression");
    assert_rejected(&f, "SELECT * FROM events LIMIT 10", "LIMIT is not supported on a stream");
    assert_rejected(&f, "SELECT action, count(*) FROM events GROUP BY action", "never final");
    assert_rejected(&f, "SELECT * FROM events a, events b", "cross join");
    assert_rejected(&f, "SELECT * FROM events UNION SELECT * FROM events", "UNION");
    assert_rejected(&f, "SELECT * FROM events WHERE id IN (SELECT id FROM events)", "subqueries");
    assert_rejected(&f, "SELECT action, count(*) OVER () FROM events", "not supported on a stream");
    assert_rejected(&f, "WITH RECURSIVE x AS (SELECT * FROM events) SELECT * FROM x", "WITH RECURSIVE");
}

#[test]
fn rejects_windowed_aggregation_without_a_watermark() {
    let f = Fixture::new();
    let e = plan_query(TUTORIAL, &f.ctx(OutputMode::Append, None)).unwrap_err();
    assert!(e.message.contains("needs a watermark") && e.message.contains("sources.events.watermark_delay"), "{}", e.message);
    let plan = plan_query(TUTORIAL, &f.ctx(OutputMode::Complete, Some(1))).unwrap();
    let PlanBody::Aggregate(a) = &plan.body else { panic!("not an aggregate") };
    assert_eq!(a.retention, None, "complete mode over windows keeps every window, as Spark does");
    let mut ctx = f.ctx(OutputMode::Complete, Some(1));
    ctx.sink.retention = Some(MICROS_PER_HOUR);
    let plan = plan_query(TUTORIAL, &ctx).unwrap();
    let PlanBody::Aggregate(a) = &plan.body else { panic!("not an aggregate") };
    assert_eq!(a.retention, Some(MICROS_PER_HOUR));
    let e = plan_query("SELECT action, count(*) FROM events GROUP BY action", &ctx).unwrap_err();
    assert!(e.message.contains("sinks.out.retention drops old windows, but this aggregation has no window"), "{}", e.message);
    let e = plan_query("SELECT action, count(*) FROM events GROUP BY action, session_window(time, '5 minutes')", &ctx).unwrap_err();
    assert!(e.message.contains("not supported over session windows"), "{}", e.message);
    plan_query("SELECT action, count(*) FROM events GROUP BY action", &f.ctx(OutputMode::Update, None)).unwrap();
    plan_query("SELECT action, count(*) FROM events GROUP BY action", &f.ctx(OutputMode::Complete, None)).unwrap();
}

#[test]
fn order_by_limit_ranks_a_complete_mode_table_in_one_partition() {
    let f = Fixture::new();
    let ctx = f.ctx(OutputMode::Complete, Some(1));
    let sql =
        "SELECT action, window.start AS ws, count(*) AS n FROM events GROUP BY action, window(time, '1 hour') ORDER BY n DESC, 1 LIMIT 3";
    let plan = plan_query(sql, &ctx).unwrap();
    let top = plan.top.clone().expect("a top-n plan");
    assert_eq!(top.limit, 3);
    assert_eq!(
        top.order,
        vec![TopOrder { column: 2, descending: true, nulls_first: false }, TopOrder { column: 0, descending: false, nulls_first: true }]
    );
    assert!(
        matches!(&plan.inputs[0].exchange, Exchange::Repartition { partitions: Some(1), .. }),
        "every group meets in one partition, even though the source is partitioned by action"
    );
    assert!(plan.explain("app").contains("its first 3 rows by n DESC, action"), "{}", plan.explain("app"));
    let base = "SELECT action, count(*) AS n FROM events GROUP BY action";
    let e = plan_query(&format!("{base} ORDER BY n"), &ctx).unwrap_err();
    assert!(e.message.contains("needs LIMIT n"), "{}", e.message);
    let e = plan_query(&format!("{base} ORDER BY n + 1 LIMIT 2"), &ctx).unwrap_err();
    assert!(e.message.contains("names one of its columns (action, n)"), "{}", e.message);
    let e = plan_query(&format!("{base} ORDER BY n LIMIT 2 OFFSET 1"), &ctx).unwrap_err();
    assert!(e.message.contains("no OFFSET"), "{}", e.message);
    let e = plan_query(&format!("{base} ORDER BY n LIMIT 2"), &f.ctx(OutputMode::Update, None)).unwrap_err();
    assert!(e.message.contains("no last row to sort"), "update mode keeps Spark's rule: {}", e.message);
}

#[test]
fn grouping_by_other_keys_plans_a_repartition() {
    let f = Fixture::new();
    let plan = f.plan("SELECT id, count(*) FROM events GROUP BY id, window(time, '1 hour')").unwrap();
    let Exchange::Repartition { partitions, reason } = &plan.inputs[0].exchange else { panic!("expected a repartition") };
    assert_eq!(*partitions, None, "default: the source's partition count");
    assert!(reason.contains("do not include the partition key [action]"), "{reason}");
    let plan = f.plan("SELECT count(*) AS n FROM events GROUP BY window(time, '1 hour')").unwrap();
    assert!(
        matches!(&plan.inputs[0].exchange, Exchange::Repartition { partitions: Some(1), .. }),
        "a global aggregate meets in one partition"
    );
    assert!(plan.explain("app").contains("through topic app-q-repartition"));
}

#[test]
fn sessions_plan_with_a_gap() {
    let f = Fixture::new();
    let plan = f
        .plan("SELECT action, session_window.start AS s, session_window.end AS e, count(*) AS n FROM events GROUP BY action, session_window(time, '5 minutes')")
        .unwrap();
    let PlanBody::Aggregate(a) = &plan.body else { panic!() };
    assert_eq!(a.window, Some(WindowKind::Session { gap: 5 * MICROS_PER_MINUTE }));
    assert_eq!(plan.operator_name(), "session");
    assert_eq!(plan.output[1].data_type, timestamp_type());
    assert_rejected(
        &f,
        "SELECT action, count(*) FROM events GROUP BY action, session_window(time, '0 seconds')",
        "must be greater than zero",
    );
}

/// Spark's documentation example, stream-stream join of temperatures and loads.
const SPARK_JOIN: &str = "SELECT * FROM temps JOIN loads ON load_location_id = temp_location_id \
AND load_taken_time >= temp_taken_time AND load_taken_time <= temp_taken_time + INTERVAL 1 HOUR";

#[test]
fn plans_sparks_temperature_and_load_join() {
    let f = Fixture::new();
    let plan = f.plan(SPARK_JOIN).unwrap();
    let PlanBody::Join(j) = &plan.body else { panic!("not a join") };
    assert_eq!(j.kind, JoinKind::Inner);
    // load time − temp time in [0, 1h] means left (temps) − right (loads) in [−1h, 0].
    assert_eq!((j.lower, j.upper), (-MICROS_PER_HOUR, 0));
    assert_eq!(plan.inputs.len(), 2);
    assert_eq!(plan.inputs[0].exchange, Exchange::Local, "both sides keyed by location");
    assert_eq!(plan.output.len(), 6);
    assert_eq!(plan.inputs[0].values.len() + plan.inputs[1].values.len(), 6);
    let left = f.plan(&SPARK_JOIN.replace("JOIN loads", "LEFT JOIN loads")).unwrap();
    assert!(matches!(&left.body, PlanBody::Join(j) if j.kind == JoinKind::LeftOuter));
    let between = f
        .plan("SELECT t.temp, l.load FROM temps t RIGHT JOIN loads l ON t.temp_location_id = l.load_location_id AND l.load_taken_time BETWEEN t.temp_taken_time AND t.temp_taken_time + INTERVAL '1' HOUR")
        .unwrap();
    let PlanBody::Join(j) = &between.body else { panic!() };
    assert_eq!((j.kind, j.lower, j.upper), (JoinKind::RightOuter, -MICROS_PER_HOUR, 0));
    assert_eq!(between.inputs[0].values.len(), 1, "only the columns the projection reads are kept");
}

#[test]
fn joins_without_a_bounded_time_range_or_watermark_are_rejected() {
    let f = Fixture::new();
    assert_rejected(&f, "SELECT * FROM temps JOIN loads ON load_location_id = temp_location_id", "time range bounded on both sides");
    assert_rejected(
        &f,
        "SELECT * FROM temps JOIN loads ON load_location_id = temp_location_id AND load_taken_time >= temp_taken_time",
        "bounded on both sides",
    );
    assert_rejected(
        &f,
        "SELECT * FROM temps JOIN loads ON load_taken_time BETWEEN temp_taken_time AND temp_taken_time + INTERVAL 1 HOUR",
        "key equality",
    );
    let e = plan_query(
        "SELECT * FROM events a JOIN events b ON a.id = b.id AND a.time BETWEEN b.time AND b.time + INTERVAL 1 MINUTE",
        &f.ctx(OutputMode::Append, None),
    )
    .unwrap_err();
    assert!(e.message.contains("watermark on both sides"), "{}", e.message);
    assert_rejected(
        &f,
        "SELECT temp_location_id, count(*) FROM temps JOIN loads ON load_location_id = temp_location_id AND load_taken_time BETWEEN temp_taken_time AND temp_taken_time + INTERVAL 1 HOUR GROUP BY temp_location_id",
        "never final",
    );
    let e = plan_query(SPARK_JOIN, &f.ctx(OutputMode::Update, Some(1))).unwrap_err();
    assert!(e.message.contains("append-only"), "{}", e.message);
}

#[test]
fn an_inner_joins_where_conditions_are_join_keys_and_filters() {
    let f = Fixture::new();
    // Spark pushes an inner join's WHERE into the join: the equalities across the sides are keys
    // (expressions too), the one-side conditions filter that side first, nothing is left over.
    let sql = "SELECT t.temp, l.load FROM temps t JOIN loads l \
        ON l.load_taken_time BETWEEN t.temp_taken_time AND t.temp_taken_time + INTERVAL 1 HOUR AND t.temp > 20 \
        WHERE t.temp_location_id = l.load_location_id \
        AND floor(unix_millis(t.temp_taken_time) / 60000) = floor(unix_millis(l.load_taken_time) / 60000)";
    let plan = f.plan(sql).unwrap();
    let PlanBody::Join(j) = &plan.body else { panic!("not a join") };
    assert!(j.residual.is_none(), "every condition is a key, the time range or a filter");
    assert_eq!((plan.inputs[0].keys.len(), plan.inputs[1].keys.len()), (2, 2));
    assert!(plan.inputs[0].scan.filter.is_some(), "t.temp > 20 filters the left side before the join");
    assert!(plan.inputs[1].scan.filter.is_none());
    assert_eq!(plan.inputs[0].exchange, Exchange::Local, "both sides are partitioned by the location, one of the keys");
    // An outer join's WHERE stays after the join (it filters the null-padded rows too).
    let outer = f
        .plan(
            &sql.replace("JOIN loads l", "LEFT JOIN loads l")
                .replace(" AND t.temp > 20", "")
                .replace("WHERE t.temp_location_id = l.load_location_id AND", "AND t.temp_location_id = l.load_location_id WHERE"),
        )
        .unwrap();
    let PlanBody::Join(j) = &outer.body else { panic!("not a join") };
    assert!(j.residual.is_some(), "the window equality is applied after a left join");
    assert_eq!(outer.inputs[0].keys.len(), 1);
}

#[test]
fn a_join_on_a_key_the_sources_are_not_partitioned_by_repartitions() {
    let f = Fixture::new();
    // Both sides partitioned by the location: a join on (location, minute) needs no exchange,
    // but a join on the minute alone does.
    let local = f
        .plan("SELECT t.temp FROM temps t JOIN loads l ON floor(unix_millis(t.temp_taken_time) / 60000) = floor(unix_millis(l.load_taken_time) / 60000) AND t.temp_location_id = l.load_location_id AND l.load_taken_time BETWEEN t.temp_taken_time AND t.temp_taken_time + INTERVAL 1 HOUR")
        .unwrap();
    assert_eq!(local.inputs[1].exchange, Exchange::Local);
    let minute = f
        .plan("SELECT t.temp FROM temps t JOIN loads l ON floor(unix_millis(t.temp_taken_time) / 60000) = floor(unix_millis(l.load_taken_time) / 60000) AND l.load_taken_time BETWEEN t.temp_taken_time AND t.temp_taken_time + INTERVAL 1 HOUR")
        .unwrap();
    assert!(matches!(minute.inputs[0].exchange, Exchange::Repartition { .. }));
    // Partitioned by keys that do not correspond (left by location, right's location not a key).
    let crossed = f
        .plan("SELECT t.temp FROM temps t JOIN loads l ON t.temp_location_id = l.load AND l.load_taken_time BETWEEN t.temp_taken_time AND t.temp_taken_time + INTERVAL 1 HOUR")
        .unwrap();
    assert!(matches!(crossed.inputs[0].exchange, Exchange::Repartition { .. }));
}

#[test]
fn a_self_join_on_other_keys_repartitions_both_sides() {
    let f = Fixture::new();
    let plan = f
        .plan("SELECT a.id, b.time FROM events a JOIN events b ON a.id = b.id AND a.time BETWEEN b.time AND b.time + INTERVAL '5' MINUTE")
        .unwrap();
    assert!(matches!(plan.inputs[0].exchange, Exchange::Repartition { .. }));
    assert!(matches!(plan.inputs[1].exchange, Exchange::Repartition { .. }));
    let text = plan.explain("app");
    assert!(text.contains("app-q-repartition-right"), "{text}");
}

#[test]
fn distinct_plans_deduplication() {
    let f = Fixture::new();
    let plan = f.plan("SELECT DISTINCT ON (id) id, action, time FROM events").unwrap();
    assert!(matches!(&plan.body, PlanBody::Dedup(d) if d.rule == DedupRule::WithinWatermark { delay: 2 * MICROS_PER_HOUR }));
    assert_eq!(plan.inputs[0].keys.len(), 1);
    assert_eq!(plan.inputs[0].values.len(), 3);
    let plan = f.plan("SELECT DISTINCT action, time FROM events").unwrap();
    assert!(matches!(&plan.body, PlanBody::Dedup(d) if d.rule == DedupRule::EventTimeInKey));
    assert_eq!(plan.inputs[0].exchange, Exchange::Local, "keyed by action, the partition key");
    let e = plan_query("SELECT DISTINCT id FROM events", &f.ctx(OutputMode::Append, None)).unwrap_err();
    assert!(e.message.contains("needs a watermark"), "{}", e.message);
}

#[test]
fn stream_table_joins_use_the_primary_key() {
    let f = Fixture::new();
    let plan = f.plan("SELECT e.id, d.owner FROM events e LEFT JOIN devices d ON e.id = d.id WHERE e.action = 'Open'").unwrap();
    let PlanBody::TableJoin(t) = &plan.body else { panic!("not a table join") };
    assert!(t.left_outer);
    assert_eq!(t.table_keys, vec![0]);
    assert!(plan.scan().filter.is_some(), "the stream-only WHERE is applied before the lookup");
    assert!(!plan.is_stateful());
    assert_rejected(&f, "SELECT e.id FROM events e JOIN devices d ON e.action = d.owner", "whole primary key");
    assert_rejected(&f, "SELECT * FROM devices", "tables are joined to streams");
}

#[test]
fn name_errors_point_at_the_name_and_suggest() {
    let f = Fixture::new();
    let e = assert_rejected(&f, "SELECT acton FROM events", "unknown column acton; did you mean action?");
    assert_eq!(e.position, Some((1, 8)));
    let e = assert_rejected(&f, "SELECT * FROM evnts", "unknown source evnts; the pipeline's sources are: events");
    assert_eq!(e.position, Some((1, 15)));
    assert_rejected(&f, "SELECT uppr(action) FROM events", "did you mean upper?");
    assert_rejected(&f, "SELECT e.action FROM events AS ev", "unknown source or alias e");
    f.plan("SELECT ev.action FROM events AS ev").unwrap();
}

#[test]
fn grouping_errors() {
    let f = Fixture::new();
    assert_rejected(
        &f,
        "SELECT action, id, count(*) FROM events GROUP BY action, window(time, '1 hour')",
        "column id is neither grouped nor aggregated",
    );
    assert_rejected(&f, "SELECT action FROM events WHERE count(*) > 1 GROUP BY action, window(time, '1 hour')", "use HAVING");
    assert_rejected(&f, "SELECT sum(count(*)) FROM events GROUP BY action, window(time, '1 hour')", "may not contain another aggregate");
    assert_rejected(&f, "SELECT action, sum(action) FROM events GROUP BY action, window(time, '1 hour')", "cannot aggregate a string");
    assert_rejected(
        &f,
        "SELECT action, count(*) FROM events GROUP BY action, window(id, '1 hour')",
        "must be over the source's event_time column `time`",
    );
    assert_rejected(
        &f,
        "SELECT action, count(*) FROM events GROUP BY action, window(time, '1 hour', '2 hours')",
        "slide duration must be at most",
    );
    assert_rejected(&f, "SELECT action, count(*) FROM events GROUP BY action, window(time, '1 parsec')", "unknown unit");
    assert_rejected(&f, "SELECT window.start FROM events", "needs a window(...) in GROUP BY");
}

#[test]
fn type_errors() {
    let f = Fixture::new();
    assert_rejected(&f, "SELECT action + 1 FROM events", "cannot apply + to string and long; CAST the string");
    assert_rejected(&f, "SELECT * FROM events WHERE qty", "WHERE needs a boolean condition");
    assert_rejected(&f, "SELECT * FROM events WHERE action = 1", "cannot compare a string with a long");
    assert_rejected(&f, "SELECT * FROM events WHERE time > 'yesterday'", "is not a timestamp");
    assert_rejected(&f, "SELECT CASE WHEN qty > 1 THEN 'a' ELSE 1 END FROM events", "different types");
    assert_rejected(&f, "SELECT action, action FROM events", "two output columns are named action");
}

#[test]
fn syntax_errors_have_positions() {
    let f = Fixture::new();
    let e = f.err("SELECT action\nFROM events WHERE");
    assert!(e.message.starts_with("syntax error"), "{}", e.message);
    assert_eq!(e.position.map(|p| p.0), Some(2));
}

#[test]
fn explain_names_operators_state_and_topics() {
    let f = Fixture::new();
    let text = f.plan(TUTORIAL).unwrap().explain("tutorial");
    for needle in [
        "query q → sink out (topic out, output_mode append)",
        "columns read: time, action",
        "max(time) − 2h",
        "exchange: none",
        "tumbling window 1h",
        "changelog topic tutorial-q-changelog",
        "key: JSON object of [action, window_start, window_end]",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

mod chain;
