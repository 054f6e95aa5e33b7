//! Timestamps in a user's pattern, in Java's letters (`yyyy-MM-dd HH:mm:ss`, `M/d/yyyy H:mm`,
//! `SSS` for fractions of a second, text in single quotes), UTC. Parsing and formatting
//! without allocation; depends on `time` only.

use crate::time::{civil_from_days, days_from_civil, days_in_month, MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MINUTE, MICROS_PER_SECOND};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Year(usize),
    Month(usize),
    Day(usize),
    Hour(usize),
    Minute(usize),
    Second(usize),
    /// Fraction digits.
    Fraction(usize),
    Literal(char),
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampPattern {
    text: String,
    parts: Vec<Part>,
}

impl TimestampPattern {
    /// Compiles `pattern`; letters other than y M d H m s S must be quoted.
    pub fn new(pattern: &str) -> Result<TimestampPattern, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut parts = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&x| x == '\'')
                    .ok_or_else(|| format!("unclosed quote in timestamp_format \"{pattern}\""))?;
                parts.extend(chars[i + 1..i + 1 + end].iter().map(|&x| Part::Literal(x)));
                i += end + 2;
                continue;
            }
            let run = chars[i..].iter().take_while(|&&x| x == c).count();
            let part = match c {
                'y' | 'u' => Part::Year(run),
                'M' => Part::Month(run),
                'd' => Part::Day(run),
                'H' => Part::Hour(run),
                'm' => Part::Minute(run),
                's' => Part::Second(run),
                'S' => Part::Fraction(run.min(9)),
                c if c.is_ascii_alphabetic() => {
                    return Err(format!(
                        "timestamp_format \"{pattern}\": letter '{c}' is not supported; use y M d H m s S, and quote text like 'T'"
                    ))
                }
                c => {
                    parts.extend(std::iter::repeat_n(Part::Literal(c), run));
                    i += run;
                    continue;
                }
            };
            parts.push(part);
            i += run;
        }
        if !parts.iter().any(|p| matches!(p, Part::Year(_))) || !parts.iter().any(|p| matches!(p, Part::Day(_))) {
            return Err(format!("timestamp_format \"{pattern}\" needs at least a year (yyyy), a month (MM) and a day (dd)"));
        }
        Ok(TimestampPattern { text: pattern.to_string(), parts })
    }

    /// Microseconds since the epoch, or why `text` does not match.
    pub fn parse(&self, text: &str) -> Result<i64, String> {
        let b = text.trim().as_bytes();
        let mut i = 0;
        let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut frac) = (1970i64, 1i64, 1i64, 0i64, 0i64, 0i64, 0i64);
        let bad = |what: &str| format!("\"{}\" does not match timestamp_format \"{}\" ({what})", truncate(text), self.text);
        for part in &self.parts {
            let (slot, width, max_width) = match *part {
                Part::Literal(c) => {
                    let mut buf = [0u8; 4];
                    let lit = c.encode_utf8(&mut buf).as_bytes();
                    if !b[i..].starts_with(lit) {
                        return Err(bad(&format!("expected '{c}'")));
                    }
                    i += lit.len();
                    continue;
                }
                Part::Year(n) => (&mut y, n, if n == 2 { 2 } else { 4 }),
                Part::Month(n) => (&mut mo, n, 2),
                Part::Day(n) => (&mut d, n, 2),
                Part::Hour(n) => (&mut h, n, 2),
                Part::Minute(n) => (&mut mi, n, 2),
                Part::Second(n) => (&mut s, n, 2),
                Part::Fraction(n) => (&mut frac, n, n),
            };
            let digits = b[i..].iter().take(max_width.max(width)).take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 || (width > 1 && digits < width) {
                return Err(bad("a number is missing"));
            }
            let mut v: i64 = 0;
            for &c in &b[i..i + digits] {
                v = v * 10 + i64::from(c - b'0');
            }
            if let Part::Fraction(_) = part {
                v *= 10i64.pow(6u32.saturating_sub(digits as u32));
                v /= 10i64.pow((digits as u32).saturating_sub(6));
            }
            if let Part::Year(2) = part {
                v += 2000;
            }
            *slot = v;
            i += digits;
        }
        if i != b.len() {
            return Err(bad("trailing characters"));
        }
        if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
            return Err(bad("no such date or time"));
        }
        Ok(days_from_civil(y, mo, d) * MICROS_PER_DAY + h * MICROS_PER_HOUR + mi * MICROS_PER_MINUTE + s * MICROS_PER_SECOND + frac)
    }

    /// Appends `micros` formatted by the pattern.
    pub fn format(&self, micros: i64, out: &mut String) {
        let days = micros.div_euclid(MICROS_PER_DAY);
        let of_day = micros.rem_euclid(MICROS_PER_DAY);
        let (y, mo, d) = civil_from_days(days);
        for part in &self.parts {
            let (v, width) = match *part {
                Part::Literal(c) => {
                    out.push(c);
                    continue;
                }
                Part::Year(2) => (y.rem_euclid(100), 2),
                Part::Year(n) => (y, n),
                Part::Month(n) => (mo, n),
                Part::Day(n) => (d, n),
                Part::Hour(n) => (of_day / MICROS_PER_HOUR, n),
                Part::Minute(n) => (of_day / MICROS_PER_MINUTE % 60, n),
                Part::Second(n) => (of_day / MICROS_PER_SECOND % 60, n),
                Part::Fraction(n) => {
                    let micros = of_day % MICROS_PER_SECOND;
                    let v = if n <= 6 { micros / 10i64.pow(6 - n as u32) } else { micros * 10i64.pow(n as u32 - 6) };
                    (v, n)
                }
            };
            out.push_str(&format!("{v:0width$}"));
        }
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_timestamp;

    #[test]
    fn parses_and_formats_the_retail_patterns() {
        let p = TimestampPattern::new("yyyy-MM-dd HH:mm:ss").unwrap();
        let t = p.parse("2010-12-01 08:26:00").unwrap();
        assert_eq!(t, parse_timestamp("2010-12-01T08:26:00Z").unwrap());
        let mut s = String::new();
        p.format(t, &mut s);
        assert_eq!(s, "2010-12-01 08:26:00");
        let us = TimestampPattern::new("M/d/yyyy H:mm").unwrap();
        assert_eq!(us.parse("12/1/2010 8:26").unwrap(), t);
        assert_eq!(us.parse("12/01/2010 08:26").unwrap(), t);
        let frac = TimestampPattern::new("yyyy-MM-dd'T'HH:mm:ss.SSS").unwrap();
        assert_eq!(frac.parse("2010-12-01T08:26:00.250").unwrap(), t + 250_000);
        let mut s = String::new();
        frac.format(t + 250_999, &mut s);
        assert_eq!(s, "2010-12-01T08:26:00.250");
        let mut s = String::new();
        p.format(-1, &mut s);
        assert_eq!(s, "1969-12-31 23:59:59");
    }

    #[test]
    fn rejects_what_does_not_match() {
        let p = TimestampPattern::new("yyyy-MM-dd HH:mm:ss").unwrap();
        for bad in ["2010-12-01", "2010-13-01 00:00:00", "2010-02-30 00:00:00", "2010-12-01 08:26:00x", "", "yyyy"] {
            assert!(p.parse(bad).is_err(), "{bad}");
        }
        assert!(TimestampPattern::new("yyyy-MM-dd hh:mm a").is_err());
        assert!(TimestampPattern::new("HH:mm").is_err());
        assert!(TimestampPattern::new("yyyy-MM-dd'T").is_err());
    }
}
