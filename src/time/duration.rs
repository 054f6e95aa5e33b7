//! Durations as users write them: `500ms`, `2h`, `1h30m` in pipeline files, and Spark's
//! interval strings `'10 minutes'`, `'1 hour 30 minutes'` in SQL. Result in microseconds.

use super::{MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MILLI, MICROS_PER_MINUTE, MICROS_PER_SECOND};

/// Why a duration did not parse; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration; write a number and a unit, e.g. \"500ms\", \"30s\", \"2h\"")]
    Empty,
    #[error("\"{text}\": expected a number at \"{rest}\"; write e.g. \"500ms\", \"30s\", \"2h\" or \"10 minutes\"")]
    ExpectedNumber { text: String, rest: String },
    #[error("\"{text}\": the number {number} has no unit; write e.g. \"{number}s\" or \"{number}ms\"")]
    MissingUnit { text: String, number: String },
    #[error("\"{text}\": unknown unit \"{unit}\"; use us, ms, s, m, h, d or w (or their names: seconds, minutes, hours, ...)")]
    UnknownUnit { text: String, unit: String },
    #[error("\"{text}\": months and years have no fixed length; write the duration in days")]
    VariableUnit { text: String },
    #[error("\"{text}\" is too large")]
    Overflow { text: String },
    #[error("\"{text}\": a duration may not be negative")]
    Negative { text: String },
}

/// Parses a duration such as `500ms`, `2h`, `1h30m`, `10 minutes` or `1 hour 30 minutes`
/// into microseconds.
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    if trimmed.starts_with('-') {
        return Err(DurationError::Negative { text: text.to_string() });
    }
    // Spark accepts an optional leading "interval" keyword.
    let body = trimmed.strip_prefix("interval ").or_else(|| trimmed.strip_prefix("INTERVAL ")).unwrap_or(trimmed).trim();
    let mut rest = body;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if number_len == 0 {
            return Err(DurationError::ExpectedNumber { text: text.to_string(), rest: rest.to_string() });
        }
        let number = &rest[..number_len];
        rest = rest[number_len..].trim_start();
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic() && c != 'µ').unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(DurationError::MissingUnit { text: text.to_string(), number: number.to_string() });
        }
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let per_unit = unit_micros(unit).ok_or_else(|| {
            if matches!(unit.to_ascii_lowercase().as_str(), "mo" | "month" | "months" | "y" | "year" | "years") {
                DurationError::VariableUnit { text: text.to_string() }
            } else {
                DurationError::UnknownUnit { text: text.to_string(), unit: unit.to_string() }
            }
        })?;
        let micros = scale(number, per_unit).ok_or_else(|| DurationError::Overflow { text: text.to_string() })?;
        total = total.checked_add(micros).ok_or_else(|| DurationError::Overflow { text: text.to_string() })?;
    }
    Ok(total)
}

fn unit_micros(unit: &str) -> Option<i64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "us" | "µs" | "micro" | "micros" | "microsecond" | "microseconds" => 1,
        "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => MICROS_PER_MILLI,
        "s" | "sec" | "secs" | "second" | "seconds" => MICROS_PER_SECOND,
        "m" | "min" | "mins" | "minute" | "minutes" => MICROS_PER_MINUTE,
        "h" | "hr" | "hrs" | "hour" | "hours" => MICROS_PER_HOUR,
        "d" | "day" | "days" => MICROS_PER_DAY,
        "w" | "week" | "weeks" => 7 * MICROS_PER_DAY,
        _ => return None,
    })
}

/// `number` (decimal, maybe with a fraction) times `per_unit`, exactly where possible.
fn scale(number: &str, per_unit: i64) -> Option<i64> {
    match number.split_once('.') {
        None => number.parse::<i64>().ok()?.checked_mul(per_unit),
        Some((int, frac)) => {
            if frac.contains('.') {
                return None;
            }
            let whole = if int.is_empty() { 0 } else { int.parse::<i64>().ok()? };
            let mut micros = whole.checked_mul(per_unit)?;
            let mut unit = per_unit;
            for digit in frac.bytes() {
                unit /= 10;
                micros = micros.checked_add(i64::from(digit - b'0') * unit)?;
            }
            Some(micros)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        assert_eq!(parse_duration("500ms"), Ok(500 * MICROS_PER_MILLI));
        assert_eq!(parse_duration("2h"), Ok(2 * MICROS_PER_HOUR));
        assert_eq!(parse_duration("1h30m"), Ok(90 * MICROS_PER_MINUTE));
        assert_eq!(parse_duration("0s"), Ok(0));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000));
    }

    #[test]
    fn spark_interval_strings() {
        assert_eq!(parse_duration("10 minutes"), Ok(10 * MICROS_PER_MINUTE));
        assert_eq!(parse_duration("1 hour"), Ok(MICROS_PER_HOUR));
        assert_eq!(parse_duration("1 hour 30 minutes"), Ok(90 * MICROS_PER_MINUTE));
        assert_eq!(parse_duration("interval 1 day"), Ok(MICROS_PER_DAY));
    }

    #[test]
    fn errors_say_what_to_write() {
        assert!(matches!(parse_duration("10"), Err(DurationError::MissingUnit { .. })));
        assert!(matches!(parse_duration("10 parsecs"), Err(DurationError::UnknownUnit { .. })));
        assert!(matches!(parse_duration("1 month"), Err(DurationError::VariableUnit { .. })));
        assert!(matches!(parse_duration("-1s"), Err(DurationError::Negative { .. })));
        assert!(matches!(parse_duration("h"), Err(DurationError::ExpectedNumber { .. })));
        assert!(matches!(parse_duration("99999999999999999999d"), Err(DurationError::Overflow { .. })));
        let msg = parse_duration("10").unwrap_err().to_string();
        assert!(msg.contains("\"10s\""), "{msg}");
    }
}
