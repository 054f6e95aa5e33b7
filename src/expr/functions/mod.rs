//! eddy's own scalar functions: those Spark has and DataFusion lacks, those whose Spark
//! semantics differ from what DataFusion and `datafusion-spark` give, and the streaming markers
//! (`window`, `session_window`). Each is one variant of [`Fun`]; `spark.rs` holds their
//! implementations over Arrow arrays.

pub mod library;
mod spark;

pub use spark::duration_micros;

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion_common::{plan_err, Result, ScalarValue};
use datafusion_expr::{ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use crate::types::{timestamp_type, window_type};

/// An eddy scalar function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fun {
    /// `window(ts, size[, slide[, start]])`: the window struct; only tumbling windows can be
    /// computed per row (the planner turns a GROUP BY window into the window operator).
    Window,
    /// `session_window(ts, gap)`: only meaningful in GROUP BY.
    SessionWindow,
    /// `window_time(window)`: the window's end minus one microsecond (Spark's event time of a
    /// windowed aggregate row).
    WindowTime,
    /// `a / b` in Spark: always a double (or a decimal), NULL when b is zero.
    Divide,
    /// `a div b`: integer division, NULL when b is zero.
    IntDivide,
    /// CAST with Spark's non-ANSI rules: `spark_cast(x, 'type')`.
    Cast,
    /// `to_timestamp(s[, pattern])`, microseconds.
    ToTimestamp,
    /// `timestamp_seconds(n)`, `timestamp_millis(n)`, `timestamp_micros(n)`.
    TimestampFrom(i64),
    /// `ln`, `log10`, `log2`: NULL for arguments <= 0 (Spark's logarithms).
    Log(LogBase),
    /// `round(x[, d])`: HALF_UP on a double's shortest decimal form, as Spark's `BigDecimal`.
    Round,
    /// `unix_seconds(ts)`, `unix_millis(ts)`, `unix_micros(ts)`: whole units since the epoch,
    /// rounded down.
    UnixIn(i64),
}

/// The base of a logarithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogBase {
    E,
    Ten,
    Two,
}

impl Fun {
    fn name(self) -> &'static str {
        match self {
            Fun::Window => "window",
            Fun::SessionWindow => "session_window",
            Fun::WindowTime => "window_time",
            Fun::Divide => "spark_divide",
            Fun::IntDivide => "spark_int_divide",
            Fun::Cast => "spark_cast",
            Fun::ToTimestamp => "to_timestamp",
            Fun::TimestampFrom(1_000_000) => "timestamp_seconds",
            Fun::TimestampFrom(1_000) => "timestamp_millis",
            Fun::TimestampFrom(_) => "timestamp_micros",
            Fun::Log(LogBase::E) => "ln",
            Fun::Log(LogBase::Ten) => "log10",
            Fun::Log(LogBase::Two) => "log2",
            Fun::Round => "round",
            Fun::UnixIn(1_000_000) => "unix_seconds",
            Fun::UnixIn(1_000) => "unix_millis",
            Fun::UnixIn(_) => "unix_micros",
        }
    }

    /// What `eddy functions` says about it.
    pub fn description(self) -> &'static str {
        match self {
            Fun::Window => "window(ts, size[, slide[, start]]): the event-time window of a row; GROUP BY it for windowed aggregation",
            Fun::SessionWindow => "session_window(ts, gap): GROUP BY it for session windows",
            Fun::WindowTime => "window_time(window): the window's end minus 1 microsecond, the event time of an aggregated row",
            Fun::Divide => "a / b: double division (decimal for decimals); NULL when b is 0",
            Fun::IntDivide => "a div b: integer division; NULL when b is 0",
            Fun::Cast => "CAST(x AS type) with Spark's non-ANSI rules: NULL when x does not convert",
            Fun::ToTimestamp => "to_timestamp(s[, pattern]): a timestamp from text (Java pattern letters)",
            Fun::TimestampFrom(_) => "timestamp_seconds/millis/micros(n): a timestamp from an epoch number",
            Fun::Log(_) => "ln/log10/log2(x): NULL when x <= 0, as in Spark",
            Fun::Round => "round(x[, d]): x rounded half up to d decimal places (d may be negative), on the decimal form Spark prints",
            Fun::UnixIn(_) => "unix_seconds/millis/micros(ts): whole seconds, milliseconds or microseconds since the epoch",
        }
    }

    /// Every function, for the registry.
    pub fn all() -> Vec<Fun> {
        vec![
            Fun::Window,
            Fun::SessionWindow,
            Fun::WindowTime,
            Fun::Divide,
            Fun::IntDivide,
            Fun::Cast,
            Fun::ToTimestamp,
            Fun::TimestampFrom(1_000_000),
            Fun::TimestampFrom(1_000),
            Fun::TimestampFrom(1),
            Fun::Log(LogBase::E),
            Fun::Log(LogBase::Ten),
            Fun::Log(LogBase::Two),
            Fun::Round,
            Fun::UnixIn(1_000_000),
            Fun::UnixIn(1_000),
            Fun::UnixIn(1),
        ]
    }

    /// Internal functions the planner writes (operators), hidden from listings.
    pub fn is_internal(self) -> bool {
        matches!(self, Fun::Divide | Fun::IntDivide | Fun::Cast)
    }

    pub fn udf(self) -> Arc<ScalarUDF> {
        Arc::new(ScalarUDF::new_from_impl(EddyFunction { fun: self, signature: Signature::user_defined(Volatility::Immutable) }))
    }
}

/// A [`Fun`] as DataFusion sees it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct EddyFunction {
    pub fun: Fun,
    signature: Signature,
}

fn is_numeric(t: &DataType) -> bool {
    t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Null)
}

fn arity(name: &str, args: &[DataType], min: usize, max: usize) -> Result<()> {
    if args.len() < min || args.len() > max {
        let want = if min == max { format!("{min}") } else { format!("{min} to {max}") };
        return plan_err!("{name}() takes {want} argument(s), not {}", args.len());
    }
    Ok(())
}

impl ScalarUDFImpl for EddyFunction {
    fn name(&self) -> &str {
        self.fun.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.fun.name();
        match self.fun {
            Fun::Window => {
                arity(name, args, 2, 4)?;
                // window(w, ...) over a window column w windows by window_time(w), as in Spark.
                let mut out = vec![if crate::types::is_window(&args[0]) { args[0].clone() } else { timestamp_type() }];
                out.extend(args[1..].iter().cloned());
                Ok(out)
            }
            Fun::SessionWindow => {
                arity(name, args, 2, 2)?;
                let time = if crate::types::is_window(&args[0]) { args[0].clone() } else { timestamp_type() };
                Ok(vec![time, args[1].clone()])
            }
            Fun::WindowTime => {
                arity(name, args, 1, 1)?;
                Ok(args.to_vec())
            }
            Fun::Divide | Fun::IntDivide => {
                arity(name, args, 2, 2)?;
                if !is_numeric(&args[0]) || !is_numeric(&args[1]) {
                    let sym = if self.fun == Fun::Divide { "/" } else { "div" };
                    return plan_err!(
                        "cannot apply {sym} to {} and {}{}",
                        crate::types::type_name(&args[0]),
                        crate::types::type_name(&args[1]),
                        if args.iter().any(|a| matches!(a, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)) {
                            "; CAST the string to a number"
                        } else {
                            ""
                        }
                    );
                }
                Ok(spark::division_types(self.fun, &args[0], &args[1]))
            }
            Fun::Cast => {
                arity(name, args, 2, 2)?;
                Ok(args.to_vec())
            }
            Fun::ToTimestamp => {
                arity(name, args, 1, 2)?;
                Ok(args.iter().map(|t| if is_numeric(t) && !matches!(t, DataType::Null) { t.clone() } else { DataType::Utf8 }).collect())
            }
            Fun::TimestampFrom(_) => {
                arity(name, args, 1, 1)?;
                Ok(vec![if args[0].is_floating() { DataType::Float64 } else { DataType::Int64 }])
            }
            Fun::Log(_) => {
                arity(name, args, 1, 1)?;
                Ok(vec![DataType::Float64])
            }
            Fun::UnixIn(_) => {
                arity(name, args, 1, 1)?;
                Ok(vec![timestamp_type()])
            }
            Fun::Round => {
                arity(name, args, 1, 2)?;
                let x = match &args[0] {
                    t if t.is_integer() => DataType::Int64,
                    t @ DataType::Decimal128(..) => t.clone(),
                    t if is_numeric(t) => DataType::Float64,
                    t => return plan_err!("round() needs a number, not {}", crate::types::type_name(t)),
                };
                let mut out = vec![x];
                if args.len() == 2 {
                    if !args[1].is_integer() {
                        return plan_err!("round()'s second argument is a whole number of digits");
                    }
                    out.push(DataType::Int64);
                }
                Ok(out)
            }
        }
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match self.fun {
            Fun::Window | Fun::SessionWindow => window_type(),
            Fun::WindowTime | Fun::ToTimestamp | Fun::TimestampFrom(_) => timestamp_type(),
            Fun::Divide => spark::division_result(args),
            Fun::IntDivide => DataType::Int64,
            Fun::Cast => DataType::Null,
            Fun::Log(_) => DataType::Float64,
            Fun::UnixIn(_) => DataType::Int64,
            Fun::Round => match args.first() {
                Some(t) if t.is_integer() => DataType::Int64,
                Some(t @ DataType::Decimal128(..)) => t.clone(),
                _ => DataType::Float64,
            },
        })
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if self.fun == Fun::Cast {
            let target = match args.scalar_arguments.get(1) {
                Some(Some(ScalarValue::Utf8(Some(t)))) => crate::types::parse_type(t).map_err(datafusion_common::DataFusionError::Plan)?,
                _ => return plan_err!("spark_cast needs the target type as a literal"),
            };
            return Ok(Arc::new(Field::new(self.name(), target, true)));
        }
        let types: Vec<DataType> = args.arg_fields.iter().map(|f| f.data_type().clone()).collect();
        Ok(Arc::new(Field::new(self.name(), self.return_type(&types)?, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        spark::invoke(self.fun, args)
    }
}

/// A [`library::RowFunction`] as DataFusion sees it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RowUdf {
    pub function: Arc<library::RowFunction>,
    signature: Signature,
}

impl RowUdf {
    pub fn udf(function: Arc<library::RowFunction>) -> Arc<ScalarUDF> {
        Arc::new(ScalarUDF::new_from_impl(RowUdf { function, signature: Signature::user_defined(Volatility::Immutable) }))
    }
}

impl ScalarUDFImpl for RowUdf {
    fn name(&self) -> &str {
        self.function.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        self.function.coerce(args)
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(self.function.return_type(args))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let types: Vec<DataType> = args.arg_fields.iter().map(|f| f.data_type().clone()).collect();
        let out = args.return_field.data_type().clone();
        spark::map_rows(&args.args, args.number_rows, &out, |v| self.function.eval(v, &types))
    }
}

/// eddy's row functions, for the registry.
pub fn library() -> Vec<Arc<library::RowFunction>> {
    library::all()
}
