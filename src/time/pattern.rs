//! Date-time patterns in Java's `DateTimeFormatter` letters, as Spark's `date_format`,
//! `from_unixtime`, `to_timestamp(s, fmt)` and `unix_timestamp(s, fmt)` take them, in UTC:
//! `y` year, `M`/`L` month (`MMM` Jul, `MMMM` July), `d` day, `D` day of year, `E` day of week
//! (`EEE` Tue, `EEEE` Tuesday), `a` AM/PM, `H` `k` `K` `h` hours, `m` minutes, `s` seconds,
//! `S` fractions, `Q` quarter, `X` `x` `Z` offsets, `z` `V` zone names, `'text'` literals.

use super::{civil_from_days, days_from_civil, days_in_month, MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MINUTE, MICROS_PER_SECOND};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Year(usize),
    Month(usize),
    Day(usize),
    DayOfYear(usize),
    DayOfWeek(usize),
    AmPm,
    /// 0-23 (`H`), 1-24 (`k`), 0-11 (`K`), 1-12 (`h`).
    Hour(char, usize),
    Minute(usize),
    Second(usize),
    Fraction(usize),
    Quarter(usize),
    /// `X`, `x` or `Z`, with its width.
    Offset(char, usize),
    ZoneName,
    Literal(String),
}

const MONTHS: [&str; 12] =
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatePattern {
    parts: Vec<Part>,
}

impl DatePattern {
    pub fn new(pattern: &str) -> Result<DatePattern, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut parts: Vec<Part> = Vec::new();
        let mut i = 0;
        let literal = |parts: &mut Vec<Part>, s: &str| match parts.last_mut() {
            Some(Part::Literal(l)) => l.push_str(s),
            _ => parts.push(Part::Literal(s.to_string())),
        };
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                if chars.get(i + 1) == Some(&'\'') {
                    literal(&mut parts, "'");
                    i += 2;
                    continue;
                }
                let end =
                    chars[i + 1..].iter().position(|&x| x == '\'').ok_or_else(|| format!("unclosed quote in pattern \"{pattern}\""))?;
                let text: String = chars[i + 1..i + 1 + end].iter().collect();
                literal(&mut parts, &text);
                i += end + 2;
                continue;
            }
            let run = chars[i..].iter().take_while(|&&x| x == c).count();
            let part = match c {
                'y' | 'u' | 'Y' => Part::Year(run),
                'M' | 'L' => Part::Month(run),
                'd' => Part::Day(run),
                'D' => Part::DayOfYear(run),
                'E' => Part::DayOfWeek(run),
                'a' => Part::AmPm,
                'H' | 'k' | 'K' | 'h' => Part::Hour(c, run),
                'm' => Part::Minute(run),
                's' => Part::Second(run),
                'S' => Part::Fraction(run.min(9)),
                'Q' | 'q' => Part::Quarter(run),
                'X' | 'x' | 'Z' => Part::Offset(c, run),
                'z' | 'V' | 'O' => Part::ZoneName,
                'G' => Part::Literal("AD".into()),
                c if c.is_ascii_alphabetic() => return Err(format!("pattern \"{pattern}\": letter '{c}' is not supported")),
                c => {
                    literal(&mut parts, &c.to_string().repeat(run));
                    i += run;
                    continue;
                }
            };
            parts.push(part);
            i += run;
        }
        Ok(DatePattern { parts })
    }

    /// `micros` (UTC) in the pattern.
    pub fn format(&self, micros: i64, out: &mut String) {
        use std::fmt::Write;
        let days = micros.div_euclid(MICROS_PER_DAY);
        let in_day = micros.rem_euclid(MICROS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let hour = in_day / MICROS_PER_HOUR;
        let minute = in_day % MICROS_PER_HOUR / MICROS_PER_MINUTE;
        let second = in_day % MICROS_PER_MINUTE / MICROS_PER_SECOND;
        let fraction = in_day % MICROS_PER_SECOND;
        let num = |out: &mut String, v: i64, width: usize| {
            let _ = write!(out, "{v:0width$}");
        };
        for p in &self.parts {
            match p {
                Part::Year(2) => num(out, y.rem_euclid(100), 2),
                Part::Year(w) => num(out, y, *w),
                Part::Month(w) if *w >= 4 => out.push_str(MONTHS[(m - 1) as usize]),
                Part::Month(3) => out.push_str(&MONTHS[(m - 1) as usize][..3]),
                Part::Month(w) => num(out, m, *w),
                Part::Day(w) => num(out, d, *w),
                Part::DayOfYear(w) => num(out, days - days_from_civil(y, 1, 1) + 1, *w),
                Part::DayOfWeek(w) => {
                    let dow = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
                    out.push_str(if *w >= 4 { DAYS[dow] } else { &DAYS[dow][..3] });
                }
                Part::AmPm => out.push_str(if hour < 12 { "AM" } else { "PM" }),
                Part::Hour(c, w) => {
                    let h = match c {
                        'k' if hour == 0 => 24,
                        'K' => hour % 12,
                        'h' if hour % 12 == 0 => 12,
                        'h' => hour % 12,
                        _ => hour,
                    };
                    num(out, h, *w);
                }
                Part::Minute(w) => num(out, minute, *w),
                Part::Second(w) => num(out, second, *w),
                Part::Fraction(w) => {
                    let digits = format!("{:09}", fraction * 1000);
                    out.push_str(&digits[..*w]);
                }
                Part::Quarter(w) => num(out, (m - 1) / 3 + 1, *w),
                Part::Offset('X', _) => out.push('Z'),
                Part::Offset('x', 1) => out.push_str("+00"),
                Part::Offset('x', 3) | Part::Offset('x', 5) => out.push_str("+00:00"),
                Part::Offset('Z', 4) => out.push_str("GMT"),
                Part::Offset('Z', 5) => out.push('Z'),
                Part::Offset(_, _) => out.push_str("+0000"),
                Part::ZoneName => out.push_str("UTC"),
                Part::Literal(s) => out.push_str(s),
            }
        }
    }

    /// Microseconds since the epoch of `text`, which must match the pattern whole.
    pub fn parse(&self, text: &str) -> Result<i64, String> {
        let b = text.as_bytes();
        let mut i = 0;
        let (mut y, mut m, mut d) = (1970i64, 1i64, 1i64);
        let mut day_of_year: Option<i64> = None;
        let (mut hour, mut minute, mut second, mut micros) = (0i64, 0i64, 0i64, 0i64);
        let mut pm: Option<bool> = None;
        let mut twelve = false;
        let mut offset = 0i64;
        let bad = || format!("\"{text}\" does not match the pattern");
        let digits = |i: &mut usize, min: usize, max: usize| -> Result<i64, String> {
            let start = *i;
            while *i < b.len() && *i - start < max && b[*i].is_ascii_digit() {
                *i += 1;
            }
            if *i - start < min {
                return Err(bad());
            }
            text[start..*i].parse::<i64>().map_err(|_| bad())
        };
        let word = |i: &mut usize, names: &[&str], len: Option<usize>| -> Result<usize, String> {
            for (k, n) in names.iter().enumerate() {
                let n = len.map_or(*n, |l| &n[..l]);
                if text.get(*i..*i + n.len()).is_some_and(|t| t.eq_ignore_ascii_case(n)) {
                    *i += n.len();
                    return Ok(k);
                }
            }
            Err(bad())
        };
        for (pi, p) in self.parts.iter().enumerate() {
            // A numeric field followed directly by another numeric field takes its width exactly.
            let adjacent = matches!(self.parts.get(pi + 1), Some(q) if !matches!(q, Part::Literal(_) | Part::AmPm | Part::Offset(..) | Part::ZoneName));
            let width = |w: usize, natural: usize| if adjacent { (w.max(1), w.max(1)) } else { (w.max(1), natural.max(w)) };
            match p {
                Part::Year(2) => y = 2000 + digits(&mut i, 2, 2)?,
                Part::Year(w) => {
                    let (lo, hi) = width(*w, 9);
                    y = digits(&mut i, lo.min(4), hi)?;
                }
                Part::Month(w) if *w >= 4 => m = word(&mut i, &MONTHS, None)? as i64 + 1,
                Part::Month(3) => m = word(&mut i, &MONTHS, Some(3))? as i64 + 1,
                Part::Month(w) => {
                    let (lo, hi) = width(*w, 2);
                    m = digits(&mut i, lo, hi)?;
                }
                Part::Day(w) => {
                    let (lo, hi) = width(*w, 2);
                    d = digits(&mut i, lo, hi)?;
                }
                Part::DayOfYear(w) => {
                    let (lo, hi) = width(*w, 3);
                    day_of_year = Some(digits(&mut i, lo, hi)?);
                }
                Part::DayOfWeek(w) => {
                    word(&mut i, &DAYS, if *w >= 4 { None } else { Some(3) })?;
                }
                Part::AmPm => pm = Some(word(&mut i, &["AM", "PM"], None)? == 1),
                Part::Hour(c, w) => {
                    let (lo, hi) = width(*w, 2);
                    hour = digits(&mut i, lo, hi)?;
                    twelve = matches!(c, 'h' | 'K');
                    if *c == 'k' && hour == 24 {
                        hour = 0;
                    }
                }
                Part::Minute(w) => {
                    let (lo, hi) = width(*w, 2);
                    minute = digits(&mut i, lo, hi)?;
                }
                Part::Second(w) => {
                    let (lo, hi) = width(*w, 2);
                    second = digits(&mut i, lo, hi)?;
                }
                Part::Fraction(w) => {
                    let start = i;
                    let f = digits(&mut i, *w, if adjacent { *w } else { 9 })?;
                    let n = (i - start) as u32;
                    micros = if n >= 6 { f / 10i64.pow(n - 6) } else { f * 10i64.pow(6 - n) };
                }
                Part::Quarter(w) => {
                    digits(&mut i, *w, 2)?;
                }
                Part::Offset(..) => {
                    if b.get(i) == Some(&b'Z') {
                        i += 1;
                    } else {
                        let sign = match b.get(i) {
                            Some(b'+') => 1,
                            Some(b'-') => -1,
                            _ => return Err(bad()),
                        };
                        i += 1;
                        let h = digits(&mut i, 2, 2)?;
                        if b.get(i) == Some(&b':') {
                            i += 1;
                        }
                        let mm = if b.get(i).is_some_and(u8::is_ascii_digit) { digits(&mut i, 2, 2)? } else { 0 };
                        offset = sign * (h * MICROS_PER_HOUR + mm * MICROS_PER_MINUTE);
                    }
                }
                Part::ZoneName => {
                    word(&mut i, &["UTC", "GMT", "Z"], None)?;
                }
                Part::Literal(s) => {
                    if text.get(i..i + s.len()) != Some(s.as_str()) {
                        return Err(bad());
                    }
                    i += s.len();
                }
            }
        }
        if i != b.len() {
            return Err(bad());
        }
        if let Some(is_pm) = pm {
            if twelve || hour <= 12 {
                hour = hour % 12 + if is_pm { 12 } else { 0 };
            }
        }
        let days = match day_of_year {
            Some(n) => days_from_civil(y, 1, 1) + n - 1,
            None => {
                if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
                    return Err(bad());
                }
                days_from_civil(y, m, d)
            }
        };
        if hour > 23 || minute > 59 || second > 59 {
            return Err(bad());
        }
        Ok(days * MICROS_PER_DAY + hour * MICROS_PER_HOUR + minute * MICROS_PER_MINUTE + second * MICROS_PER_SECOND + micros - offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_469_494_923_456_000; // 2016-07-26T01:02:03.456Z, a Tuesday

    fn fmt(p: &str, t: i64) -> String {
        let mut s = String::new();
        DatePattern::new(p).unwrap().format(t, &mut s);
        s
    }

    #[test]
    fn formats_as_java_does() {
        assert_eq!(fmt("MMM-dd HH:mm", T), "Jul-26 01:02");
        assert_eq!(fmt("yyyy-MM-dd HH:mm:ss.SSS", T), "2016-07-26 01:02:03.456");
        assert_eq!(fmt("EEEE, MMMM d, yy h:mm a", T), "Tuesday, July 26, 16 1:02 AM");
        assert_eq!(fmt("EEE D Q 'week' k", T), "Tue 208 3 week 1");
        assert_eq!(fmt("yyyy-MM-dd'T'HH:mm:ssXXX", 0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn parses_what_it_formats() {
        for p in ["yyyy-MM-dd HH:mm:ss.SSS", "dd/MMM/yyyy:HH:mm:ss", "yyyyMMddHHmmss", "MMMM d yyyy h:mm:ss.SSS a"] {
            let text = fmt(p, T);
            assert_eq!(
                DatePattern::new(p).unwrap().parse(&text),
                Ok(T - T % 1_000_000 + if p.contains('S') { 456_000 } else { 0 }),
                "{p}: {text}"
            );
        }
        let p = DatePattern::new("yyyy-MM-dd HH:mmXXX").unwrap();
        assert_eq!(p.parse("2016-07-26 03:02+02:00"), Ok(T - T % 60_000_000));
        assert!(DatePattern::new("yyyy-MM-dd").unwrap().parse("2016-02-30").is_err());
        assert!(DatePattern::new("yyyy-MM-dd").unwrap().parse("2016-07-26x").is_err());
    }
}
