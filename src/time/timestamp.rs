//! RFC 3339 timestamps: a fast parser (no allocation) for event-time columns and a formatter
//! for output (`2016-07-26T00:00:00.000Z`, UTC, milliseconds, as Spark's JSON writer prints).

use std::fmt::Write;

use super::{MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MINUTE, MICROS_PER_SECOND};

/// Why a string is not a timestamp.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("\"{text}\" is not a timestamp ({reason}); expected RFC 3339 like \"2016-07-26T10:15:00Z\" or \"2016-07-26 10:15:00.123+02:00\"")]
pub struct TimestampError {
    pub text: String,
    pub reason: &'static str,
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff…]]` (`T` or a space) with an optional zone
/// (`Z`, `±HH:MM`, `±HHMM`, `±HH`); a time without a zone is UTC. Returns microseconds since the
/// epoch; digits beyond microseconds are truncated.
pub fn parse_timestamp(text: &str) -> Result<i64, TimestampError> {
    let err = |reason| TimestampError { text: truncate(text), reason };
    let b = text.trim().as_bytes();
    let mut p = Cursor { b, i: 0 };
    let year = p.digits(4).ok_or_else(|| err("year"))?;
    p.expect(b'-').ok_or_else(|| err("'-' after the year"))?;
    let month = p.digits(2).ok_or_else(|| err("month"))?;
    p.expect(b'-').ok_or_else(|| err("'-' after the month"))?;
    let day = p.digits(2).ok_or_else(|| err("day"))?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(err("no such date"));
    }
    let mut micros = days_from_civil(year, month, day) * MICROS_PER_DAY;
    if p.done() {
        return Ok(micros);
    }
    match p.next() {
        Some(b'T' | b't' | b' ') => {}
        _ => return Err(err("'T' between date and time")),
    }
    let hour = p.digits(2).ok_or_else(|| err("hour"))?;
    p.expect(b':').ok_or_else(|| err("':' after the hour"))?;
    let minute = p.digits(2).ok_or_else(|| err("minute"))?;
    let mut second = 0;
    if p.peek() == Some(b':') {
        p.i += 1;
        second = p.digits(2).ok_or_else(|| err("second"))?;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(err("no such time of day"));
    }
    // A leap second is read as the last microsecond of its minute, as java.time does.
    let leap = second == 60;
    micros += hour * MICROS_PER_HOUR + minute * MICROS_PER_MINUTE + second.min(59) * MICROS_PER_SECOND;
    if leap {
        micros += MICROS_PER_SECOND - 1;
    }
    if matches!(p.peek(), Some(b'.' | b',')) {
        p.i += 1;
        let start = p.i;
        let mut frac: i64 = 0;
        let mut scale = 100_000;
        while let Some(d) = p.peek().filter(u8::is_ascii_digit) {
            frac += i64::from(d - b'0') * scale;
            scale /= 10;
            p.i += 1;
        }
        if p.i == start {
            return Err(err("digits after the decimal point"));
        }
        if !leap {
            micros += frac;
        }
    }
    match p.next() {
        None => {}
        Some(b'Z' | b'z') => {}
        Some(sign @ (b'+' | b'-')) => {
            let oh = p.digits(2).ok_or_else(|| err("zone offset hours"))?;
            if p.peek() == Some(b':') {
                p.i += 1;
            }
            let om = if p.done() { 0 } else { p.digits(2).ok_or_else(|| err("zone offset minutes"))? };
            if oh > 18 || om > 59 {
                return Err(err("zone offset out of range"));
            }
            let offset = oh * MICROS_PER_HOUR + om * MICROS_PER_MINUTE;
            micros += if sign == b'+' { -offset } else { offset };
        }
        Some(_) => return Err(err("zone")),
    }
    if !p.done() {
        return Err(err("trailing characters"));
    }
    Ok(micros)
}

/// Formats microseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (milliseconds, floored).
pub fn format_timestamp(micros: i64, out: &mut String) {
    let millis_total = micros.div_euclid(1000);
    let days = millis_total.div_euclid(86_400_000);
    let ms_of_day = millis_total.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let h = ms_of_day / 3_600_000;
    let min = ms_of_day / 60_000 % 60;
    let s = ms_of_day / 1000 % 60;
    let ms = ms_of_day % 1000;
    if (0..=9999).contains(&y) {
        // Digits by hand: `write!` with padding costs several times more, and every
        // timestamp in every output record passes here.
        let b = timestamp_digits([y, m, d, h, min, s, ms]);
        out.extend(b.iter().map(|&c| char::from(c)));
    } else {
        let _ = write!(out, "{y:+}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{ms:03}Z");
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` from its fields (year 0..=9999), as ASCII bytes.
fn timestamp_digits([y, m, d, h, min, s, ms]: [i64; 7]) -> [u8; 24] {
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, h);
    put(14, 2, min);
    put(17, 2, s);
    put(20, 3, ms);
    b
}

/// Appends `format_timestamp`'s text to a byte buffer, without an intermediate `String`.
pub fn write_timestamp_bytes(micros: i64, out: &mut Vec<u8>) {
    let millis_total = micros.div_euclid(1000);
    let days = millis_total.div_euclid(86_400_000);
    let ms_of_day = millis_total.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        out.extend_from_slice(&timestamp_digits([
            y,
            m,
            d,
            ms_of_day / 3_600_000,
            ms_of_day / 60_000 % 60,
            ms_of_day / 1000 % 60,
            ms_of_day % 1000,
        ]));
    } else {
        let mut s = String::with_capacity(32);
        format_timestamp(micros, &mut s);
        out.extend_from_slice(s.as_bytes());
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<i64> {
        let slice = self.b.get(self.i..self.i + n)?;
        let mut v = 0i64;
        for &c in slice {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        self.i += n;
        Some(v)
    }
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }
    fn next(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub(crate) fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day number since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fmt(micros: i64) -> String {
        let mut s = String::new();
        format_timestamp(micros, &mut s);
        s
    }

    #[test]
    fn parses_the_forms_users_write() {
        let t = 1_469_491_200_000_000; // 2016-07-26T00:00:00Z
        assert_eq!(parse_timestamp("2016-07-26T00:00:00Z"), Ok(t));
        assert_eq!(parse_timestamp("2016-07-26T00:00:00.000Z"), Ok(t));
        assert_eq!(parse_timestamp("2016-07-26 00:00:00"), Ok(t));
        assert_eq!(parse_timestamp("2016-07-26T02:00:00+02:00"), Ok(t));
        assert_eq!(parse_timestamp("2016-07-25T22:00:00-0200"), Ok(t));
        assert_eq!(parse_timestamp("2016-07-26"), Ok(t));
        assert_eq!(parse_timestamp("2016-07-26T00:00"), Ok(t));
        assert_eq!(parse_timestamp("2016-07-26T00:00:00.123456789Z"), Ok(t + 123_456));
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        for bad in ["", "2016-13-01", "2016-02-30", "2016-07-26T25:00", "2016-07-26X", "yesterday", "2016-07-26T00:00:00Zjunk"] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
        let e = parse_timestamp("2016-02-30").unwrap_err();
        assert_eq!(e.reason, "no such date");
    }

    #[test]
    fn formats_milliseconds_in_utc() {
        assert_eq!(fmt(1_469_491_200_000_000), "2016-07-26T00:00:00.000Z");
        assert_eq!(fmt(1_469_491_200_123_999), "2016-07-26T00:00:00.123Z");
        assert_eq!(fmt(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(fmt(0), "1970-01-01T00:00:00.000Z");
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity_at_millisecond_precision(ms in -62_000_000_000_000i64..250_000_000_000_000) {
            let micros = ms * 1000;
            prop_assert_eq!(parse_timestamp(&fmt(micros)), Ok(micros));
        }

        #[test]
        fn byte_formatting_equals_string_formatting(micros in i64::MIN / 2..i64::MAX / 2) {
            let mut bytes = Vec::new();
            write_timestamp_bytes(micros, &mut bytes);
            prop_assert_eq!(String::from_utf8(bytes).unwrap(), fmt(micros));
        }
    }
}
