//! Order-preserving ("memcomparable") encoding of values, used for group keys, state keys and
//! distinct sets: comparing two encodings byte-wise orders them as the values order, and equal
//! values (by SQL grouping rules) encode to equal bytes.

use std::sync::Arc;

use super::Value;

const TAG_NULL: u8 = 0x00;
const TAG_FALSE: u8 = 0x01;
const TAG_TRUE: u8 = 0x02;
const TAG_LONG: u8 = 0x03;
const TAG_DOUBLE: u8 = 0x04;
const TAG_STR: u8 = 0x05;
const TAG_TIMESTAMP: u8 = 0x06;
const TAG_WINDOW: u8 = 0x07;
const TAG_DATE: u8 = 0x08;
const TAG_DECIMAL: u8 = 0x09;
const TAG_BINARY: u8 = 0x0A;
const TAG_LIST: u8 = 0x0B;
const TAG_STRUCT: u8 = 0x0C;
const TAG_MAP: u8 = 0x0D;
/// Inside a list, struct or map: another element follows / the sequence ends. The end sorts
/// first, so a list sorts before its extensions.
const MORE: u8 = 0x01;
const END: u8 = 0x00;

/// Why bytes could not be decoded back into values (a corrupt or foreign state key).
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum KeyDecodeError {
    #[error("key ends in the middle of a value")]
    Truncated,
    #[error("unknown value tag {0:#04x} in key")]
    UnknownTag(u8),
    #[error("string in key is not UTF-8")]
    NotUtf8,
}

/// Appends `value` to `out` in order-preserving form.
pub fn encode_key_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(TAG_NULL),
        Value::Bool(false) => out.push(TAG_FALSE),
        Value::Bool(true) => out.push(TAG_TRUE),
        Value::Long(v) => {
            out.push(TAG_LONG);
            out.extend_from_slice(&order_i64(*v));
        }
        Value::Double(v) => {
            out.push(TAG_DOUBLE);
            out.extend_from_slice(&order_f64(*v));
        }
        Value::Str(s) => encode_str(s, out),
        Value::Binary(b) => {
            out.push(TAG_BINARY);
            escaped(b, out);
        }
        Value::Date(d) => {
            out.push(TAG_DATE);
            out.extend_from_slice(&order_i64(i64::from(*d)));
        }
        Value::Decimal(v) => {
            out.push(TAG_DECIMAL);
            out.extend_from_slice(&((v.get() as u128) ^ (1 << 127)).to_be_bytes());
        }
        Value::List(items) | Value::Struct(items) => {
            out.push(if matches!(value, Value::List(_)) { TAG_LIST } else { TAG_STRUCT });
            for v in items.iter() {
                out.push(MORE);
                encode_key_value(v, out);
            }
            out.push(END);
        }
        Value::Map(entries) => {
            out.push(TAG_MAP);
            for (k, v) in entries.iter() {
                out.push(MORE);
                encode_key_value(k, out);
                encode_key_value(v, out);
            }
            out.push(END);
        }
        Value::Timestamp(v) => {
            out.push(TAG_TIMESTAMP);
            out.extend_from_slice(&order_i64(*v));
        }
        Value::Window { start, end } => {
            out.push(TAG_WINDOW);
            out.extend_from_slice(&order_i64(*start));
            out.extend_from_slice(&order_i64(*end));
        }
    }
}

/// A string's key encoding (the same as `encode_key_value` of `Value::Str`).
pub fn encode_str(s: &str, out: &mut Vec<u8>) {
    out.push(TAG_STR);
    escaped(s.as_bytes(), out);
}

/// 0x00 is escaped as 0x00 0xFF and the bytes end with 0x00 0x01, so a prefix sorts before
/// its extensions and the end is unambiguous.
fn escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

fn unescape(rest: &[u8]) -> Result<(Vec<u8>, &[u8]), KeyDecodeError> {
    let mut s = Vec::new();
    let mut i = 0;
    loop {
        match (rest.get(i), rest.get(i + 1)) {
            (Some(0), Some(0x01)) => break,
            (Some(0), Some(0xFF)) => {
                s.push(0);
                i += 2;
            }
            (Some(&b), _) if b != 0 => {
                s.push(b);
                i += 1;
            }
            _ => return Err(KeyDecodeError::Truncated),
        }
    }
    Ok((s, &rest[i + 2..]))
}

/// The elements of a list or struct encoding, up to its end marker.
fn decode_seq(mut rest: &[u8]) -> Result<(Vec<Value>, &[u8]), KeyDecodeError> {
    let mut items = Vec::new();
    loop {
        let (&marker, after) = rest.split_first().ok_or(KeyDecodeError::Truncated)?;
        match marker {
            END => return Ok((items, after)),
            MORE => {
                let (v, after) = decode_one(after)?;
                items.push(v);
                rest = after;
            }
            other => return Err(KeyDecodeError::UnknownTag(other)),
        }
    }
}

/// True when any value of the key encoding `bytes` is NULL (NULL keys never join).
pub fn any_null(mut bytes: &[u8]) -> bool {
    while let Some(&tag) = bytes.first() {
        if tag == TAG_NULL {
            return true;
        }
        match decode_one(bytes) {
            Ok((_, rest)) => bytes = rest,
            Err(_) => return false,
        }
    }
    false
}

/// Decodes every value in `bytes`.
pub fn decode_key(mut bytes: &[u8]) -> Result<Vec<Value>, KeyDecodeError> {
    let mut values = Vec::new();
    while !bytes.is_empty() {
        let (value, rest) = decode_one(bytes)?;
        values.push(value);
        bytes = rest;
    }
    Ok(values)
}

fn decode_one(bytes: &[u8]) -> Result<(Value, &[u8]), KeyDecodeError> {
    let (&tag, rest) = bytes.split_first().ok_or(KeyDecodeError::Truncated)?;
    match tag {
        TAG_NULL => Ok((Value::Null, rest)),
        TAG_FALSE => Ok((Value::Bool(false), rest)),
        TAG_TRUE => Ok((Value::Bool(true), rest)),
        TAG_LONG => {
            let (v, rest) = take_i64(rest)?;
            Ok((Value::Long(v), rest))
        }
        TAG_DOUBLE => {
            let (raw, rest) = take8(rest)?;
            Ok((Value::Double(unorder_f64(raw)), rest))
        }
        TAG_TIMESTAMP => {
            let (v, rest) = take_i64(rest)?;
            Ok((Value::Timestamp(v), rest))
        }
        TAG_WINDOW => {
            let (start, rest) = take_i64(rest)?;
            let (end, rest) = take_i64(rest)?;
            Ok((Value::Window { start, end }, rest))
        }
        TAG_STR => {
            let (s, rest) = unescape(rest)?;
            let s = String::from_utf8(s).map_err(|_| KeyDecodeError::NotUtf8)?;
            Ok((Value::Str(Arc::from(s)), rest))
        }
        TAG_BINARY => {
            let (b, rest) = unescape(rest)?;
            Ok((Value::Binary(Arc::from(b)), rest))
        }
        TAG_DATE => {
            let (v, rest) = take_i64(rest)?;
            Ok((Value::Date(v as i32), rest))
        }
        TAG_DECIMAL => {
            if rest.len() < 16 {
                return Err(KeyDecodeError::Truncated);
            }
            let (head, rest) = rest.split_at(16);
            let mut raw = [0u8; 16];
            raw.copy_from_slice(head);
            Ok((Value::Decimal(super::I128::new((u128::from_be_bytes(raw) ^ (1 << 127)) as i128)), rest))
        }
        TAG_LIST | TAG_STRUCT => {
            let (items, rest) = decode_seq(rest)?;
            Ok((if tag == TAG_LIST { Value::List(Arc::from(items)) } else { Value::Struct(Arc::from(items)) }, rest))
        }
        TAG_MAP => {
            let mut entries = Vec::new();
            let mut rest = rest;
            loop {
                let (&marker, after) = rest.split_first().ok_or(KeyDecodeError::Truncated)?;
                match marker {
                    END => return Ok((Value::Map(Arc::from(entries)), after)),
                    MORE => {
                        let (k, after) = decode_one(after)?;
                        let (v, after) = decode_one(after)?;
                        entries.push((k, v));
                        rest = after;
                    }
                    other => return Err(KeyDecodeError::UnknownTag(other)),
                }
            }
        }
        other => Err(KeyDecodeError::UnknownTag(other)),
    }
}

/// Big-endian with the sign bit flipped: byte order equals numeric order.
pub fn order_i64(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn unorder_i64(b: [u8; 8]) -> i64 {
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

fn order_f64(v: f64) -> [u8; 8] {
    // Canonicalise so that values equal under SQL grouping encode equally.
    let v = if v == 0.0 {
        0.0
    } else if v.is_nan() {
        f64::NAN
    } else {
        v
    };
    let bits = v.to_bits();
    let ordered = if bits >> 63 == 1 { !bits } else { bits | (1 << 63) };
    ordered.to_be_bytes()
}

fn unorder_f64(b: [u8; 8]) -> f64 {
    let ordered = u64::from_be_bytes(b);
    let bits = if ordered >> 63 == 1 { ordered & !(1 << 63) } else { !ordered };
    f64::from_bits(bits)
}

fn take8(bytes: &[u8]) -> Result<([u8; 8], &[u8]), KeyDecodeError> {
    if bytes.len() < 8 {
        return Err(KeyDecodeError::Truncated);
    }
    let (head, rest) = bytes.split_at(8);
    let mut raw = [0u8; 8];
    raw.copy_from_slice(head);
    Ok((raw, rest))
}

fn take_i64(bytes: &[u8]) -> Result<(i64, &[u8]), KeyDecodeError> {
    let (raw, rest) = take8(bytes)?;
    Ok((unorder_i64(raw), rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(values: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in values {
            encode_key_value(v, &mut out);
        }
        out
    }

    #[test]
    fn strings_with_nul_round_trip_and_order() {
        let a = enc(&[Value::str("a\0b"), Value::Long(1)]);
        assert_eq!(decode_key(&a).unwrap(), vec![Value::str("a\0b"), Value::Long(1)]);
        assert!(enc(&[Value::str("a")]) < enc(&[Value::str("a\0")]));
        assert!(enc(&[Value::str("a")]) < enc(&[Value::str("ab")]));
    }

    #[test]
    fn nested_values_round_trip_and_order() {
        let list = |v: Vec<Value>| Value::List(Arc::from(v));
        let row = vec![
            list(vec![Value::Long(1), Value::Null, Value::str("x")]),
            Value::Struct(Arc::from(vec![Value::Date(-3), Value::Decimal(super::super::I128::new(-12345))])),
            Value::Map(Arc::from(vec![(Value::str("k"), list(vec![]))])),
            Value::Binary(Arc::from(vec![0u8, 1, 0])),
        ];
        assert_eq!(decode_key(&enc(&row)).unwrap(), row);
        assert!(enc(&[list(vec![Value::Long(1)])]) < enc(&[list(vec![Value::Long(1), Value::Long(0)])]));
        assert!(enc(&[list(vec![Value::Long(1), Value::Long(5)])]) < enc(&[list(vec![Value::Long(2)])]));
        assert!(enc(&[Value::Decimal(super::super::I128::new(-5))]) < enc(&[Value::Decimal(super::super::I128::new(3))]));
    }

    #[test]
    fn zero_and_negative_zero_group_together() {
        assert_eq!(enc(&[Value::Double(0.0)]), enc(&[Value::Double(-0.0)]));
    }

    #[test]
    fn truncated_keys_are_errors() {
        assert_eq!(decode_key(&[TAG_LONG, 1, 2]), Err(KeyDecodeError::Truncated));
        assert_eq!(decode_key(&[0x99]), Err(KeyDecodeError::UnknownTag(0x99)));
    }

    proptest! {
        #[test]
        fn long_order_is_byte_order(a: i64, b: i64) {
            prop_assert_eq!(a.cmp(&b), enc(&[Value::Long(a)]).cmp(&enc(&[Value::Long(b)])));
        }

        #[test]
        fn double_order_is_byte_order(a in -1e300f64..1e300, b in -1e300f64..1e300) {
            let ord = a.partial_cmp(&b).unwrap();
            prop_assert_eq!(ord, enc(&[Value::Double(a)]).cmp(&enc(&[Value::Double(b)])));
        }

        #[test]
        fn string_order_is_byte_order(a in ".{0,8}", b in ".{0,8}") {
            let ea = enc(&[Value::str(&a), Value::Long(0)]);
            let eb = enc(&[Value::str(&b), Value::Long(0)]);
            prop_assert_eq!(a.as_bytes().cmp(b.as_bytes()), ea.cmp(&eb));
            prop_assert_eq!(decode_key(&ea).unwrap()[0].clone(), Value::str(&a));
        }
    }
}
