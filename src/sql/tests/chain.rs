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
