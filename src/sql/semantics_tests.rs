//! Spark's semantics of expressions, through the whole planner (parse, DataFusion's planning
//! and coercion, eddy's overrides) and evaluated on a batch: ANSI mode off, as Spark runs by
//! default. Each expected value is what Spark 3.5/4.0 returns for the same expression.

use super::*;
use crate::config::{EventTimeConfig, OutputMode, SourceKind};
use crate::types::arrays::{rows_to_batch, ColumnReader};
use crate::types::{timestamp_type, DataType, Field, Schema, Value};

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("time", timestamp_type(), false),
        Field::new("s", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
        Field::new("x", DataType::Float64, true),
    ])
}

/// Plans `SELECT <expr> AS v FROM t` and evaluates it over one row (time, s, n, x).
pub(crate) fn eval_row(expr: &str, row: Vec<Value>) -> Result<Value, SqlError> {
    let schema = schema();
    let et = EventTimeConfig::Column("time".into());
    let ctx = PlanContext {
        query_name: "q",
        sources: vec![SourceInfo {
            name: "t",
            topic: "t",
            kind: SourceKind::Stream,
            schema: &schema,
            event_time: Some(&et),
            watermark_delay: Some(0),
            idle_timeout: None,
            partition_key: None,
            stage: false,
            primary_key: None,
        }],
        sink: SinkInfo { name: "out", topic: "out", output_mode: OutputMode::Append, key: None, retention: None },
        repartition_partitions: None,
    };
    let plan = plan_query(&format!("SELECT {expr} AS v FROM t"), &ctx)?;
    let PlanBody::Stateless { projection } = &plan.body else { return Err(SqlError::new("not stateless")) };
    let mut row = row;
    row.resize(plan.scan().schema.len(), Value::Null);
    let batch = rows_to_batch(&plan.scan().arrow, &[row]).map_err(|e| SqlError::new(e.to_string()))?;
    let out = projection[0].eval(&batch).map_err(|e| SqlError::new(e.to_string()))?;
    Ok(ColumnReader::new(out.as_ref()).value(0))
}

/// `expr` over a row of NULLs.
pub(crate) fn eval(expr: &str) -> Value {
    eval_row(expr, vec![]).unwrap_or_else(|e| panic!("{expr}: {}", e.message))
}

fn d(x: f64) -> Value {
    Value::Double(x)
}

fn l(x: i64) -> Value {
    Value::Long(x)
}

#[test]
fn division_by_zero_is_null_and_slash_is_double() {
    assert_eq!(eval("7 / 2"), d(3.5));
    assert_eq!(eval("7 / 0"), Value::Null);
    assert_eq!(eval("7.0 / 0.0"), Value::Null);
    assert_eq!(eval("7 div 2"), l(3));
    assert_eq!(eval("7 % 0"), Value::Null);
    assert_eq!(eval("-7 % 2"), l(-1));
}

#[test]
fn long_arithmetic_wraps_like_spark() {
    assert_eq!(eval("9223372036854775807 + 1"), l(i64::MIN));
    assert_eq!(eval_row("n + 1", vec![Value::Null, Value::Null, l(i64::MAX)]).unwrap(), l(i64::MIN));
    assert_eq!(eval("3 * 0.5"), d(1.5));
}

#[test]
fn three_valued_logic() {
    assert_eq!(eval("CAST(NULL AS BOOLEAN) AND false"), Value::Bool(false));
    assert_eq!(eval("CAST(NULL AS BOOLEAN) AND true"), Value::Null);
    assert_eq!(eval("CAST(NULL AS BOOLEAN) OR true"), Value::Bool(true));
    assert_eq!(eval("CAST(NULL AS BOOLEAN) OR false"), Value::Null);
}

#[test]
fn comparisons_with_null_are_null() {
    assert_eq!(eval("CAST(NULL AS BIGINT) = 1"), Value::Null);
    assert_eq!(eval("1 < 1.5"), Value::Bool(true));
}

#[test]
fn casts_follow_spark() {
    assert_eq!(eval("CAST(' 42 ' AS BIGINT)"), l(42));
    assert_eq!(eval("CAST('4.7' AS BIGINT)"), l(4));
    assert_eq!(eval("CAST('abc' AS BIGINT)"), Value::Null);
    assert_eq!(eval("CAST(-3.9 AS BIGINT)"), l(-3));
    assert_eq!(eval("CAST(5000000000 AS INT)"), l(705_032_704));
    assert_eq!(eval_row("CAST(time AS BIGINT)", vec![Value::Timestamp(1_500_000)]).unwrap(), l(1));
    assert_eq!(eval("CAST(2 AS TIMESTAMP)"), Value::Timestamp(2_000_000));
    assert_eq!(eval_row("CAST(time AS STRING)", vec![Value::Timestamp(1_469_491_200_000_000)]).unwrap(), Value::str("2016-07-26 00:00:00"));
    assert_eq!(
        eval_row("CAST(time AS STRING)", vec![Value::Timestamp(1_469_491_200_500_000)]).unwrap(),
        Value::str("2016-07-26 00:00:00.5")
    );
    assert_eq!(eval("CAST('yes' AS BOOLEAN)"), Value::Bool(true));
    assert_eq!(eval("CAST(1e7 AS STRING)"), Value::str("1.0E7"));
}

#[test]
fn functions() {
    assert_eq!(eval("upper('open')"), Value::str("OPEN"));
    assert_eq!(eval("coalesce(NULL, 3)"), l(3));
    assert_eq!(eval("substring('Spark SQL', 5)"), Value::str("k SQL"));
    assert_eq!(eval("substring('Spark SQL', -3, 2)"), Value::str("SQ"));
    assert_eq!(eval("round(2.5)"), d(3.0));
    assert_eq!(eval("round(-2.5)"), d(-3.0));
    // HALF_UP on the shortest decimal form, as Spark: the binary 38.785 is 38.78499999...
    assert_eq!(eval_row("round(x, 2)", vec![Value::Null, Value::Null, Value::Null, d(38.785)]).unwrap(), d(38.79));
    assert_eq!(eval_row("round(x, 2)", vec![Value::Null, Value::Null, Value::Null, d(55.894999999999996)]).unwrap(), d(55.89));
    assert_eq!(eval_row("round(x, 2)", vec![Value::Null, Value::Null, Value::Null, d(-0.125)]).unwrap(), d(-0.13));
    assert_eq!(eval_row("round(x, 2)", vec![Value::Null, Value::Null, Value::Null, d(9.995)]).unwrap(), d(10.0));
    assert_eq!(eval_row("round(x, -1)", vec![Value::Null, Value::Null, Value::Null, d(123.45)]).unwrap(), d(120.0));
    assert_eq!(eval_row("round(x, 0)", vec![Value::Null, Value::Null, Value::Null, d(0.4)]).unwrap(), d(0.0));
    assert_eq!(eval_row("round(x, 2)", vec![Value::Null, Value::Null, Value::Null, d(1e-9)]).unwrap(), d(0.0));
    assert_eq!(eval_row("round(n, -1)", vec![Value::Null, Value::Null, l(125)]).unwrap(), l(130));
    assert_eq!(eval_row("round(n, -1)", vec![Value::Null, Value::Null, l(-125)]).unwrap(), l(-130));
    assert_eq!(eval_row("round(n, -1)", vec![Value::Null, Value::Null, l(124)]).unwrap(), l(120));
    assert_eq!(eval_row("floor(x)", vec![Value::Null, Value::Null, Value::Null, d(-1.5)]).unwrap(), l(-2));
    assert_eq!(eval("concat('a', NULL)"), Value::Null);
    assert_eq!(eval("greatest(1, 0.5)"), d(1.0));
    assert!(eval_row("upper()", vec![]).unwrap_err().message.contains("upper"));
    assert!(eval_row("no_such(1)", vec![]).unwrap_err().message.contains("unknown function no_such"));
}

#[test]
fn like_patterns() {
    for (text, pattern, want) in [
        ("Open", "O%", true),
        ("Open", "_pen", true),
        ("Open", "_en", false),
        ("50%", "50\\\\%", true),
        ("500", "50\\\\%", false),
        ("abcabc", "%bc%bc", true),
        ("", "%", true),
    ] {
        assert_eq!(eval(&format!("'{text}' LIKE '{pattern}'")), Value::Bool(want), "{text} LIKE {pattern}");
    }
}

#[test]
fn null_safe_equality_rlike_and_date_literals() {
    assert_eq!(eval("CAST(NULL AS BIGINT) <=> CAST(NULL AS BIGINT)"), Value::Bool(true));
    assert_eq!(eval("1 <=> CAST(NULL AS BIGINT)"), Value::Bool(false));
    assert_eq!(eval("CAST(NULL AS BIGINT) = CAST(NULL AS BIGINT)"), Value::Null);
    assert_eq!(eval("'abc123' RLIKE '[a-z]+[0-9]+'"), Value::Bool(true));
    assert_eq!(eval("'abc' RLIKE '^[0-9]'"), Value::Bool(false));
    assert_eq!(eval("year(DATE '2016-07-26')"), l(2016));
    assert_eq!(eval("datediff(DATE '2016-07-26', DATE '2016-07-20')"), l(6));
}

#[test]
fn a_java_only_regular_expression_is_an_error_that_names_the_pattern() {
    let row = vec![Value::Null, Value::Str("abc".into())];
    let err = eval_row("regexp_replace(s, 'a(?=b)', 'x')", row).err().map(|e| e.message).unwrap_or_default();
    assert!(err.contains("a(?=b)"), "{err}");
}
