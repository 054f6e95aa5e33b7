use super::*;
use crate::types::Value;

fn lit(v: Value) -> Box<Expr> {
    Box::new(Expr::Literal(v))
}

fn bin(op: BinOp, l: Value, r: Value) -> Value {
    let ty = if matches!(op, BinOp::Div) { DataType::Double } else { l.data_type() };
    Expr::Binary { op, left: lit(l), right: lit(r), data_type: ty }.eval(&[])
}

#[test]
fn division_by_zero_is_null_and_slash_is_double() {
    assert_eq!(bin(BinOp::Div, Value::Long(7), Value::Long(2)), Value::Double(3.5));
    assert_eq!(bin(BinOp::Div, Value::Long(7), Value::Long(0)), Value::Null);
    assert_eq!(bin(BinOp::Div, Value::Double(7.0), Value::Double(0.0)), Value::Null);
    assert_eq!(bin(BinOp::IntDiv, Value::Long(7), Value::Long(2)), Value::Long(3));
    assert_eq!(bin(BinOp::Mod, Value::Long(7), Value::Long(0)), Value::Null);
    assert_eq!(bin(BinOp::Mod, Value::Long(-7), Value::Long(2)), Value::Long(-1));
}

#[test]
fn long_arithmetic_wraps_like_spark() {
    assert_eq!(bin(BinOp::Add, Value::Long(i64::MAX), Value::Long(1)), Value::Long(i64::MIN));
    assert_eq!(bin(BinOp::Mul, Value::Long(3), Value::Double(0.5)), Value::Double(1.5));
}

#[test]
fn three_valued_logic() {
    let and = |l, r| Expr::Binary { op: BinOp::And, left: lit(l), right: lit(r), data_type: DataType::Boolean }.eval(&[]);
    let or = |l, r| Expr::Binary { op: BinOp::Or, left: lit(l), right: lit(r), data_type: DataType::Boolean }.eval(&[]);
    assert_eq!(and(Value::Null, Value::Bool(false)), Value::Bool(false));
    assert_eq!(and(Value::Null, Value::Bool(true)), Value::Null);
    assert_eq!(or(Value::Null, Value::Bool(true)), Value::Bool(true));
    assert_eq!(or(Value::Null, Value::Bool(false)), Value::Null);
    assert!(!Expr::Literal(Value::Null).test(&[]), "NULL does not pass a filter");
}

#[test]
fn comparisons_with_null_are_null() {
    assert_eq!(bin(BinOp::Eq, Value::Null, Value::Long(1)), Value::Null);
    assert_eq!(bin(BinOp::Lt, Value::Long(1), Value::Double(1.5)), Value::Bool(true));
}

#[test]
fn casts_follow_spark() {
    assert_eq!(cast_value(Value::str(" 42 "), DataType::Long, false), Value::Long(42));
    assert_eq!(cast_value(Value::str("4.7"), DataType::Long, false), Value::Long(4));
    assert_eq!(cast_value(Value::str("abc"), DataType::Long, false), Value::Null);
    assert_eq!(cast_value(Value::Double(-3.9), DataType::Long, false), Value::Long(-3));
    assert_eq!(cast_value(Value::Long(5_000_000_000), DataType::Long, true), Value::Long(705_032_704));
    assert_eq!(cast_value(Value::Timestamp(1_500_000), DataType::Long, false), Value::Long(1));
    assert_eq!(cast_value(Value::Long(2), DataType::Timestamp, false), Value::Timestamp(2_000_000));
    assert_eq!(cast_value(Value::Timestamp(1_469_491_200_000_000), DataType::String, false), Value::str("2016-07-26 00:00:00"));
    assert_eq!(cast_value(Value::Timestamp(1_469_491_200_500_000), DataType::String, false), Value::str("2016-07-26 00:00:00.5"));
    assert_eq!(cast_value(Value::str("yes"), DataType::Boolean, false), Value::Bool(true));
}

#[test]
fn doubles_print_like_java() {
    assert_eq!(format_double(1.0), "1.0");
    assert_eq!(format_double(0.1), "0.1");
    assert_eq!(format_double(1e7), "1.0E7");
    assert_eq!(format_double(1.5e-5), "1.5E-5");
    assert_eq!(format_double(123456.789), "123456.789");
}

#[test]
fn functions() {
    let call = |name: &str, args: Vec<Value>| {
        let types: Vec<_> = args.iter().map(Value::data_type).collect();
        let (func, ty) = Func::resolve(name, &types).unwrap().unwrap();
        Expr::Call { func, args: args.into_iter().map(Expr::Literal).collect(), data_type: ty }.eval(&[])
    };
    assert_eq!(call("upper", vec![Value::str("open")]), Value::str("OPEN"));
    assert_eq!(call("coalesce", vec![Value::Null, Value::Long(3)]), Value::Long(3));
    assert_eq!(call("substring", vec![Value::str("Spark SQL"), Value::Long(5)]), Value::str("k SQL"));
    assert_eq!(call("substring", vec![Value::str("Spark SQL"), Value::Long(-3), Value::Long(2)]), Value::str("SQ"));
    assert_eq!(call("round", vec![Value::Double(2.5)]), Value::Double(3.0));
    assert_eq!(call("round", vec![Value::Double(-2.5)]), Value::Double(-3.0));
    // HALF_UP on the shortest decimal form, as Spark: the binary 38.785 is 38.78499999...
    assert_eq!(call("round", vec![Value::Double(38.785), Value::Long(2)]), Value::Double(38.79));
    assert_eq!(call("round", vec![Value::Double(55.894999999999996), Value::Long(2)]), Value::Double(55.89));
    assert_eq!(call("round", vec![Value::Double(-0.125), Value::Long(2)]), Value::Double(-0.13));
    assert_eq!(call("round", vec![Value::Double(9.995), Value::Long(2)]), Value::Double(10.0));
    assert_eq!(call("round", vec![Value::Double(123.45), Value::Long(-1)]), Value::Double(120.0));
    assert_eq!(call("round", vec![Value::Double(0.4), Value::Long(0)]), Value::Double(0.0));
    assert_eq!(call("round", vec![Value::Double(1e-9), Value::Long(2)]), Value::Double(0.0));
    assert_eq!(call("round", vec![Value::Long(125), Value::Long(-1)]), Value::Long(130));
    assert_eq!(call("round", vec![Value::Long(-125), Value::Long(-1)]), Value::Long(-130));
    assert_eq!(call("round", vec![Value::Long(124), Value::Long(-1)]), Value::Long(120));
    assert_eq!(call("floor", vec![Value::Double(-1.5)]), Value::Long(-2));
    assert_eq!(call("concat", vec![Value::str("a"), Value::Null]), Value::Null);
    assert_eq!(call("greatest", vec![Value::Long(1), Value::Double(0.5)]), Value::Double(1.0));
    assert!(Func::resolve("upper", &[DataType::Long]).is_err());
    assert!(Func::resolve("upper", &[]).unwrap_err().contains("takes 1 argument"));
    assert!(Func::resolve("no_such", &[]).unwrap().is_none());
}

#[test]
fn like_patterns() {
    use super::eval::like;
    assert!(like("Open", "O%"));
    assert!(like("Open", "_pen"));
    assert!(!like("Open", "_en"));
    assert!(like("50%", "50\\%"));
    assert!(!like("500", "50\\%"));
    assert!(like("abcabc", "%bc%bc"));
    assert!(like("", "%"));
}
