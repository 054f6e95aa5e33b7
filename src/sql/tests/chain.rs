//! Queries that chain stateful operators: how they are cut into stages, and what is still
//! rejected with the reason.

use super::*;

/// A windowed count per 10 minutes, then the max and sum of those counts per hour.
const WINDOW_OVER_WINDOW: &str = "SELECT window.start AS hour_start, max(n) AS max_n, sum(n) AS sum_n
FROM (SELECT action, window(time, '10 minutes') AS w, count(*) AS n FROM events GROUP BY action, window(time, '10 minutes')) t
GROUP BY window(window_time(t.w), '1 hour')";

#[test]
fn a_windowed_aggregation_over_a_windowed_aggregation_is_two_stages() {
    let f = Fixture::new();
    let plan = f.plan(WINDOW_OVER_WINDOW).unwrap();
    assert_eq!(plan.stages.len(), 1);
    let stage = &plan.stages[0];
    assert_eq!(stage.name, "q-s1");
    assert_eq!(stage.feeds, Some(Feed { query: "q".into(), side: 0 }));
    assert_eq!(stage.output_mode, OutputMode::Append, "a stage's rows are final");
    let PlanBody::Aggregate(inner) = &stage.body else { panic!("the stage is not an aggregate") };
    assert_eq!(inner.window, Some(WindowKind::Fixed(crate::time::WindowSpec::tumbling(10 * MICROS_PER_MINUTE))));
    assert_eq!(stage.inputs[0].exchange, Exchange::Local, "keyed by action, as the source");
    let PlanBody::Aggregate(outer) = &plan.body else { panic!("the top is not an aggregate") };
    assert_eq!(outer.window, Some(WindowKind::Fixed(crate::time::WindowSpec::tumbling(MICROS_PER_HOUR))));
    let input = &plan.inputs[0];
    assert_eq!(input.scan.stage.as_deref(), Some("q-s1"));
    assert!(input.keys.is_empty());
    assert!(
        matches!(&input.exchange, Exchange::Repartition { partitions: Some(1), .. }),
        "no group key: one partition, got {:?}",
        input.exchange
    );
    let names: Vec<&str> = input.scan.schema.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["action", "w", "n"], "the stage's output, without metadata columns");
    assert_eq!(input.scan.event_time, Some(EventTimeColumn::Column(1)), "the window is the event time");
    // Spark's other spelling: window() over the window column itself.
    let direct = f.plan(&WINDOW_OVER_WINDOW.replace("window(window_time(t.w), '1 hour')", "window(t.w, '1 hour')")).unwrap();
    assert!(matches!(&direct.body, PlanBody::Aggregate(a) if a.window == outer.window));
}

#[test]
fn a_cte_is_a_subquery_and_stages_are_named_in_order() {
    let f = Fixture::new();
    let sql = "WITH tenmin AS (SELECT action, window(time, '10 minutes') AS w, count(*) AS n FROM events GROUP BY action, window(time, '10 minutes')),
        hourly AS (SELECT action, window(w, '1 hour') AS h, sum(n) AS n FROM tenmin GROUP BY action, window(w, '1 hour'))
        SELECT window.start AS day, max(n) AS busiest FROM hourly GROUP BY window(h, '1 day')";
    let plan = f.plan(sql).unwrap();
    let names: Vec<&str> = plan.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["q-s2", "q-s1"], "lowest first; named top down");
    assert_eq!(plan.stages[0].feeds, Some(Feed { query: "q-s1".into(), side: 0 }));
    assert_eq!(plan.stages[1].feeds, Some(Feed { query: "q".into(), side: 0 }));
    assert!(matches!(&plan.stages[1].inputs[0].exchange, Exchange::Repartition { partitions: None, .. }), "keyed by action again");
}

#[test]
fn an_aggregation_over_a_join_windows_by_a_joined_time() {
    let f = Fixture::new();
    let sql = "SELECT temp_location_id AS location, window.start AS hour, count(*) AS pairs, max(temp) AS max_temp
        FROM temps JOIN loads ON load_location_id = temp_location_id AND load_taken_time >= temp_taken_time AND load_taken_time <= temp_taken_time + INTERVAL 1 HOUR
        GROUP BY temp_location_id, window(temp_taken_time, '1 hour')";
    let plan = f.plan(sql).unwrap();
    assert_eq!(plan.stages.len(), 1);
    assert!(matches!(plan.stages[0].body, PlanBody::Join(_)));
    assert_eq!(plan.stages[0].output.len(), 6, "the join stage passes on every column");
    assert_eq!(plan.inputs[0].scan.event_time, Some(EventTimeColumn::Column(2)), "temp_taken_time");
    assert_eq!(plan.inputs[0].keys.len(), 1);
}

#[test]
fn deduplication_before_an_aggregation() {
    let f = Fixture::new();
    let plan = f
        .plan("SELECT id, window.start AS ws, count(*) AS n FROM (SELECT DISTINCT time, id, action FROM events) d GROUP BY id, window(time, '1 hour')")
        .unwrap();
    assert!(matches!(plan.stages[0].body, PlanBody::Dedup(_)));
    assert_eq!(plan.inputs[0].scan.event_time, Some(EventTimeColumn::Column(0)));
    assert!(matches!(plan.body, PlanBody::Aggregate(_)));
}

#[test]
fn a_stage_must_emit_final_rows() {
    let f = Fixture::new();
    assert_rejected(
        &f,
        "SELECT action, max(n) AS m FROM (SELECT action, count(*) AS n FROM events GROUP BY action) t GROUP BY action",
        "must group by window(...)",
    );
    // The inner result has no event time unless it keeps the window (or the time column).
    assert_rejected(
        &f,
        "SELECT max(n) AS m FROM (SELECT action, count(*) AS n FROM events GROUP BY action, window(time, '10 minutes')) t GROUP BY window(n, '1 hour')",
        "must be over",
    );
    assert_rejected(&f, "SELECT * FROM events UNION ALL SELECT * FROM events", "UNION");
}

#[test]
fn a_stateless_query_over_an_aggregating_subquery_reads_it_as_a_stage() {
    let f = Fixture::new();
    let plan = f
        .plan("SELECT hour, n * 2 AS twice FROM (SELECT window.start AS hour, count(*) AS n FROM events GROUP BY window(time, '1 hour')) t WHERE n > 10")
        .unwrap();
    assert_eq!(plan.stages.len(), 1);
    assert!(matches!(plan.body, PlanBody::Stateless { .. }));
    assert_eq!(plan.inputs[0].values.len(), 2, "the rows carry every column of the stage");
    assert!(plan.inputs[0].scan.filter.is_some(), "the outer WHERE runs where the stage's rows are keyed");
}

#[test]
fn union_all_inputs_feed_one_stage_source() {
    let f = Fixture::new();
    let plan = f
        .plan("SELECT action, window.start AS hour, count(*) AS n FROM (SELECT time, action FROM events WHERE qty > 0 UNION ALL SELECT time, id AS action FROM events) u GROUP BY action, window(time, '1 hour')")
        .unwrap();
    let names: Vec<&str> = plan.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["q-s2", "q-s3"], "one stage per input; s1 names the union");
    for s in &plan.stages {
        assert!(matches!(s.body, PlanBody::Stateless { .. }));
        assert_eq!(s.feeds, Some(Feed { query: "q".into(), side: 0 }));
    }
    assert_eq!(plan.inputs[0].scan.stage.as_deref(), Some("q-s1"));
    assert_eq!(plan.inputs[0].scan.event_time, Some(EventTimeColumn::Column(0)));
    let merged = f.plan("SELECT * FROM (SELECT time, action FROM events UNION ALL SELECT time, id FROM events) u").unwrap();
    assert!(matches!(merged.body, PlanBody::Stateless { .. }));
    assert_eq!(merged.stages.len(), 2, "a stateless query over a UNION ALL reads its inputs' stages");
    assert_rejected(&f, "SELECT time FROM events UNION ALL SELECT time FROM events", "read it as a subquery");
    assert_rejected(&f, "SELECT * FROM (SELECT time FROM events UNION SELECT time FROM events) u", "UNION is not supported on streams");
    assert_rejected(&f, "SELECT * FROM (SELECT time, id FROM events UNION ALL SELECT time FROM events) u", "as many columns");
    assert_rejected(
        &f,
        "SELECT action, count(*) AS n FROM (SELECT time, action FROM events UNION ALL SELECT kafka_timestamp AS time, action FROM events) u GROUP BY action, window(time, '1 hour')",
        "event time in the same column",
    );
}

/// The three busiest actions per 10-minute window.
const TOP_ACTIONS: &str = "SELECT window.start AS ws, action, n, rn FROM (
  SELECT w AS window, action, n, ROW_NUMBER() OVER (PARTITION BY w ORDER BY n DESC, action) AS rn
  FROM (SELECT action, window(time, '10 minutes') AS w, count(*) AS n FROM events GROUP BY action, window(time, '10 minutes')) c
) t WHERE rn <= 3";

#[test]
fn a_window_top_n_ranks_the_rows_of_a_windowed_aggregation() {
    let f = Fixture::new();
    let plan = f.plan(TOP_ACTIONS).unwrap();
    assert_eq!(plan.stages.len(), 1);
    assert!(matches!(plan.stages[0].body, PlanBody::Aggregate(_)));
    let PlanBody::TopN(t) = &plan.body else { panic!("the top is not a Top-N: {:?}", plan.body) };
    assert_eq!(t.ranking, crate::expr::ranking::Ranking::RowNumber);
    assert_eq!(t.limit, 3);
    assert_eq!(
        t.order,
        [SortKey { descending: true, nulls_first: false }, SortKey { descending: false, nulls_first: true }],
        "Spark's null order"
    );
    assert_eq!(t.window_key, Some(0), "partitioned by the window, which is the stage's event time");
    let input = &plan.inputs[0];
    assert_eq!(input.keys.len(), 1);
    assert_eq!(input.values.len(), 2 + 3, "the sort keys, then every column");
    assert!(matches!(&input.exchange, Exchange::Repartition { .. }));
    let names: Vec<&str> = plan.output.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["ws", "action", "n", "rn"]);
    assert_eq!(plan.output[3].data_type, DataType::Int64);
    for (bound, limit) in [("rn < 3", 2), ("rn = 1", 1), ("rn BETWEEN 2 AND 5", 5), ("3 >= rn AND n > 1", 3), ("rn <= 4 AND rn <= 2", 2)] {
        let plan = f.plan(&TOP_ACTIONS.replace("rn <= 3", bound)).unwrap();
        assert!(matches!(&plan.body, PlanBody::TopN(t) if t.limit == limit), "{bound}");
    }
    let rank = f.plan(&TOP_ACTIONS.replace("ROW_NUMBER()", "RANK()")).unwrap();
    assert!(matches!(&rank.body, PlanBody::TopN(t) if t.ranking == crate::expr::ranking::Ranking::Rank));
    let text = plan.explain("app");
    assert!(text.contains("top-n: ROW_NUMBER() OVER (PARTITION BY"), "{text}");
    assert!(text.contains("keep rank <= 3"), "{text}");
}

#[test]
fn a_top_n_of_rows_per_window_needs_no_aggregation() {
    let f = Fixture::new();
    let plan = f
        .plan("SELECT * FROM (SELECT time, id, amount, ROW_NUMBER() OVER (PARTITION BY window(time, '1 hour') ORDER BY amount DESC) AS rn FROM events) t WHERE rn <= 2")
        .unwrap();
    assert!(plan.stages.is_empty());
    let PlanBody::TopN(t) = &plan.body else { panic!("not a Top-N") };
    assert_eq!(t.window_key, Some(0), "the window over the event time closes the partition");
}

#[test]
fn a_top_n_feeds_an_aggregation_above_it() {
    let f = Fixture::new();
    let sql = format!("SELECT window.start AS hour, sum(n) AS top_total FROM ({TOP_ACTIONS}) x GROUP BY window(x.ws, '1 hour')");
    // ws is window.start, not the window: no event time passes through.
    assert!(f.plan(&sql).is_err());
    let sql = "SELECT window.start AS hour, sum(n) AS top_total FROM (SELECT w, n FROM (
        SELECT w, action, n, ROW_NUMBER() OVER (PARTITION BY w ORDER BY n DESC) AS rn
        FROM (SELECT action, window(time, '10 minutes') AS w, count(*) AS n FROM events GROUP BY action, window(time, '10 minutes')) c) t WHERE rn <= 3) x
        GROUP BY window(x.w, '1 hour')";
    let plan = f.plan(sql).unwrap();
    assert_eq!(plan.stages.len(), 2, "aggregate -> top-n -> aggregate");
    assert!(matches!(plan.stages[1].body, PlanBody::TopN(_)));
    assert_eq!(plan.inputs[0].scan.event_time, Some(EventTimeColumn::Column(0)));
}

#[test]
fn rankings_that_cannot_run_on_a_stream_are_rejected_with_what_to_write() {
    let f = Fixture::new();
    let inner =
        "FROM (SELECT action, window(time, '10 minutes') AS w, count(*) AS n FROM events GROUP BY action, window(time, '10 minutes')) c";
    assert_rejected(
        &f,
        &format!("SELECT w, action, ROW_NUMBER() OVER (PARTITION BY w ORDER BY n DESC) AS rn {inner}"),
        "keep its first rows",
    );
    assert_rejected(
        &f,
        &format!("SELECT * FROM (SELECT w, action, ROW_NUMBER() OVER (PARTITION BY w ORDER BY n DESC) AS rn {inner}) t WHERE rn > 3"),
        "WHERE rn <= N",
    );
    assert_rejected(
        &f,
        &format!("SELECT * FROM (SELECT w, action, ROW_NUMBER() OVER (PARTITION BY action ORDER BY n DESC) AS rn {inner}) t WHERE rn <= 3"),
        "PARTITION BY the window",
    );
    assert_rejected(
        &f,
        &format!("SELECT * FROM (SELECT w, action, ROW_NUMBER() OVER (PARTITION BY w) AS rn {inner}) t WHERE rn <= 3"),
        "needs ORDER BY",
    );
    assert_rejected(
        &f,
        &format!("SELECT * FROM (SELECT w, action, lag(n) OVER (PARTITION BY w ORDER BY n) AS p {inner}) t"),
        "not supported on a stream",
    );
    assert_rejected(
        &f,
        &format!("SELECT * FROM (SELECT w, sum(n) OVER (PARTITION BY w ORDER BY n) AS s {inner}) t"),
        "not supported on a stream",
    );
}
