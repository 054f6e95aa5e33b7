//! Queries of result tables over real sled trees: state written as the engine writes a
//! committed cycle, published as the engine publishes it, read back through `answer`.

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::operators::Operator;
use crate::runtime::task::build_operator;
use crate::sql::QueryPlan;
use crate::state::{StateStore, StateTree, StateWriter, TreeChanges};
use crate::types::Value;

const HOUR: i64 = 3_600_000_000;

fn plan(mode: &str) -> Arc<QueryPlan> {
    let text = format!(
        "app: t\nkafka: {{ bootstrap_servers: \"localhost:9092\" }}\nsources:\n  events:\n    topic: events\n    schema: {{ time: timestamp, action: string }}\n    event_time: time\n    watermark_delay: 0s\nsinks:\n  out: {{ topic: out, output_mode: {mode} }}\nqueries:\n  - name: counts\n    sink: out\n    sql: \"SELECT action, window(time, '1 hour') AS window, count(*) AS count FROM events GROUP BY action, window(time, '1 hour')\"\n"
    );
    let pipeline = crate::pipeline::from_text(Path::new("t.yaml"), &text, |_| None).unwrap();
    Arc::new(pipeline.queries[0].clone())
}

/// One partition's operator and tree; `commit` writes what changed as the engine does.
struct Partition {
    op: Box<dyn Operator>,
    tree: StateTree,
}

impl Partition {
    fn add(&mut self, hour: i64, action: &str, n: usize) {
        let mut out = Vec::new();
        for i in 0..n {
            let row = [Value::Timestamp(hour * HOUR + i as i64), Value::Str(action.into()), Value::Long(1)];
            self.op.process(0, &row, i64::MIN, &mut out);
        }
    }

    fn changes(&mut self) -> TreeChanges {
        let mut changes = Vec::new();
        self.op.take_changes(&mut |k, v| changes.push((k.to_vec(), v.map(<[u8]>::to_vec))));
        TreeChanges { tree: self.tree.clone(), changes, changelog_offset: Some(1) }
    }
}

struct Fixture {
    _store: StateStore,
    writer: StateWriter,
    live: Arc<LiveTables>,
    plan: Arc<QueryPlan>,
    parts: Vec<Partition>,
    dir: std::path::PathBuf,
}

impl Fixture {
    fn new(name: &str, partitions: usize) -> Fixture {
        let dir = std::env::temp_dir().join(format!("eddy-query-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = StateStore::open(&dir, 1 << 20).unwrap();
        let writer = StateWriter::start(16);
        let live = LiveTables::new();
        live.attach(writer.reads());
        let plan = plan("complete");
        let parts = (0..partitions)
            .map(|p| Partition { op: build_operator(&plan).unwrap(), tree: store.tree(&format!("counts-{p}")).unwrap() })
            .collect();
        Fixture { _store: store, writer, live, plan, parts, dir }
    }

    /// Publishes the first `owned` partitions of `total`.
    fn publish(&self, owned: usize, total: usize) {
        let trees = self.parts.iter().take(owned).enumerate().map(|(p, part)| (p as i32, part.tree.clone())).collect();
        self.live.publish(self.plan.clone(), total, "events", trees, self.writer.queued());
    }

    /// One committed cycle: every partition's changes in one writer job.
    fn commit(&mut self) {
        let job = self.parts.iter_mut().map(Partition::changes).collect();
        self.writer.apply_all(job).unwrap();
        self.writer.drain().unwrap();
    }

    fn rows(&self, sql: &str) -> Vec<serde_json::Value> {
        let a = answer(&self.live, sql, &Limits::default(), false).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let v: serde_json::Value = serde_json::from_str(&to_json(&a)).unwrap();
        v["rows"].as_array().unwrap().clone()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn an_aggregate_over_the_table_sees_every_committed_partition_and_nothing_uncommitted() {
    let mut f = Fixture::new("sum", 2);
    f.parts[0].add(0, "Open", 30);
    f.parts[1].add(0, "Close", 10);
    f.parts[1].add(1, "Open", 5);
    f.commit();
    f.publish(2, 2);
    let sum = "SELECT action, sum(count) AS n FROM counts GROUP BY action ORDER BY action";
    assert_eq!(f.rows(sum), vec![serde_json::json!({"action": "Close", "n": 10}), serde_json::json!({"action": "Open", "n": 35})]);
    // Processed but not committed: not in the answer.
    f.parts[0].add(2, "Close", 100);
    assert_eq!(f.rows(sum)[0]["n"], 10, "an uncommitted row is never seen");
    f.commit();
    assert_eq!(f.rows(sum)[0]["n"], 110, "once committed it is");
}

#[test]
fn order_by_and_limit_give_the_top_rows_with_the_sink_s_columns() {
    let mut f = Fixture::new("top", 1);
    for (hour, action, n) in [(0, "Open", 7), (0, "Close", 3), (1, "Open", 9), (1, "Close", 9), (2, "Open", 1)] {
        f.parts[0].add(hour, action, n);
    }
    f.commit();
    f.publish(1, 1);
    let top = f.rows("SELECT action, window.start AS start, count FROM counts ORDER BY count DESC, action LIMIT 3");
    let got: Vec<(String, i64)> = top.iter().map(|r| (r["action"].as_str().unwrap().to_string(), r["count"].as_i64().unwrap())).collect();
    assert_eq!(got, vec![("Close".into(), 9), ("Open".into(), 9), ("Open".into(), 7)]);
    assert_eq!(top[0]["start"], "1970-01-01T01:00:00.000Z");
    let all = f.rows("SELECT * FROM counts WHERE action = 'Open' AND count > 1");
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|r| r.get("window").is_some()), "SELECT * has the query's own columns: {all:?}");
    let distinct = f.rows("SELECT DISTINCT action FROM counts ORDER BY action");
    assert_eq!(distinct.len(), 2);
    let empty = f.rows("SELECT count(*) AS n, sum(count) AS s FROM counts WHERE action = 'None'");
    assert_eq!(empty, vec![serde_json::json!({"n": 0, "s": null})], "an aggregate over no rows is one row");
    let csv =
        to_csv(&answer(&f.live, "SELECT action, count FROM counts ORDER BY count LIMIT 1", &Limits::default(), false).unwrap()).unwrap();
    assert_eq!(csv, "action,count\nOpen,1\n");
}

#[test]
fn partitions_owned_elsewhere_fail_the_query_unless_a_partial_answer_is_asked_for() {
    let mut f = Fixture::new("partial", 2);
    f.parts[0].add(0, "Open", 4);
    f.parts[1].add(0, "Open", 6);
    f.commit();
    f.publish(1, 3);
    let sql = "SELECT sum(count) AS n FROM counts";
    let e = answer(&f.live, sql, &Limits::default(), false).err().unwrap();
    assert_eq!(e.status, 503);
    assert!(e.message.contains("partitions 1 (not owned by this instance), 2 (not owned by this instance)"), "{e}");
    let a = answer(&f.live, sql, &Limits::default(), true).unwrap();
    let v: serde_json::Value = serde_json::from_str(&to_json(&a)).unwrap();
    assert_eq!(v["rows"][0]["n"], 4);
    assert_eq!(v["tables"][0]["answered"], serde_json::json!([0]));
    assert_eq!(v["tables"][0]["missing"][1]["partition"], 2);
}

#[test]
fn a_tree_still_being_written_by_its_restore_is_not_answered_for() {
    let mut f = Fixture::new("restoring", 1);
    f.parts[0].add(0, "Open", 4);
    // The restore queued its writes; the tree is whole after them.
    let job = vec![f.parts[0].changes()];
    let reads = f.writer.reads();
    let guard = reads.hold();
    f.writer.apply_all(job).unwrap();
    f.publish(1, 1);
    drop(guard);
    f.writer.drain().unwrap();
    assert_eq!(f.rows("SELECT sum(count) AS n FROM counts")[0]["n"], 4);
    // A partition published before its restore's last write landed is reported as restoring.
    let live = LiveTables::new();
    live.attach(f.writer.reads());
    live.publish(f.plan.clone(), 1, "events", vec![(0, f.parts[0].tree.clone())], f.writer.queued() + 1);
    let e = answer(&live, "SELECT * FROM counts", &Limits::default(), false).err().unwrap();
    assert!(e.status == 503 && e.message.contains("0 (restoring)"), "{e}");
}

#[test]
fn limits_and_mistakes_are_refused_with_the_reason() {
    let mut f = Fixture::new("limits", 1);
    f.parts[0].add(0, "Open", 1);
    f.parts[0].add(1, "Open", 1);
    f.commit();
    f.publish(1, 1);
    let small = Limits { max_rows: 1, ..Limits::default() };
    let e = answer(&f.live, "SELECT * FROM counts", &small, false).err().unwrap();
    assert_eq!(e.status, 422);
    assert!(e.message.contains("more than 1 state rows"), "{e}");
    let e = answer(&f.live, "SELECT * FROM nope", &Limits::default(), false).err().unwrap();
    assert_eq!((e.status, e.message.contains("its queries: counts")), (404, true), "{e}");
    let e = answer(&f.live, "SELECT nope FROM counts", &Limits::default(), false).err().unwrap();
    assert_eq!(e.status, 400, "{e}");
    let e = answer(&f.live, "SELECT a.action FROM counts a JOIN counts b ON a.action = b.action", &Limits::default(), false).err().unwrap();
    assert!(e.message.contains("join"), "{e}");
    f.live.detach();
    let e = answer(&f.live, "SELECT * FROM counts", &Limits::default(), false).err().unwrap();
    assert_eq!(e.status, 503, "between two runs nothing is published: {e}");
}

#[test]
fn parameters_are_percent_decoded() {
    let p = parse_params("sql=SELECT+a%2C%20b+FROM+t&partial=true&x");
    assert_eq!(p["sql"], "SELECT a, b FROM t");
    assert_eq!(p["partial"], "true");
    assert_eq!(parse_params(&format!("sql={}", percent_encode("SELECT 'é' % 2"))).get("sql").unwrap(), "SELECT 'é' % 2");
}
