//! A single-pass JSON scanner over one payload's bytes, for the JSON decoder: whitespace,
//! punctuation, numbers by the JSON grammar, literals, and skipping whole values —
//! iteratively, validating their structure — without building them; strings are in
//! `json_str`. It knows nothing of schemas or rows; depends only on `formats::DecodeError`
//! and `json_str`. Positions are checked: no input makes it panic.
//!
//! What it accepts is what serde_json (1.0, default features) accepts, error for error:
//! strings that are values may not hold raw control bytes and must pair their surrogate
//! escapes; keys may (serde_json reads keys as raw bytes); skipped strings are not checked for
//! UTF-8 and skipped values have no nesting limit (serde_json's `ignore_value` has none).

use super::{DecodeError, DecodeErrorKind};

/// Where a scanned string's text is.
pub(super) enum Text<'a> {
    /// No escapes: the raw bytes between the quotes.
    Raw(&'a [u8]),
    /// Unescaped into the scratch buffer given to [`Scanner::string`].
    Scratch,
}

/// A scanned number, classified as serde_json classifies it.
pub(super) enum Number {
    /// An integer that fits an i64 (but not `-0`, which is a float).
    Int(i64),
    /// A positive integer above `i64::MAX` that fits a u64.
    Big(u64),
    /// Anything else: a fraction, an exponent, `-0`, or an integer beyond the u64 range,
    /// correctly rounded (`str::parse::<f64>`).
    Float(f64),
}

/// A scan failed; what and where is kept in the scanner (see [`Scanner::error`]). Small, so
/// that results stay in registers on the hot path.
#[derive(Debug)]
pub(super) struct Bad;

pub(super) type Scan<T> = Result<T, Bad>;

pub(super) struct Scanner<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
    /// The last failure: at which byte, what was wrong or expected, and whether to name the
    /// byte found there.
    failure: (usize, &'static str, bool),
}

pub(super) const ONES: u64 = 0x0101_0101_0101_0101;
pub(super) const HIGH: u64 = ONES << 7;

/// The eight bytes at `i` as a little-endian word, if there are eight.
#[inline(always)]
pub(super) fn word(buf: &[u8], i: usize) -> Option<u64> {
    buf.get(i..).and_then(<[u8]>::first_chunk::<8>).map(|w| u64::from_le_bytes(*w))
}

/// `a == b` for short slices (column names) without a call to `memcmp`: two overlapping
/// loads of a word (or half or quarter of one) cover up to 16 bytes.
#[inline]
pub(super) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    fn at<const N: usize>(s: &[u8], i: usize) -> Option<&[u8; N]> {
        s.get(i..).and_then(<[u8]>::first_chunk::<N>)
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1 => a.first() == b.first(),
        2..4 => at::<2>(a, 0) == at::<2>(b, 0) && at::<2>(a, n - 2) == at::<2>(b, n - 2),
        4..8 => at::<4>(a, 0) == at::<4>(b, 0) && at::<4>(a, n - 4) == at::<4>(b, n - 4),
        8..=16 => at::<8>(a, 0) == at::<8>(b, 0) && at::<8>(a, n - 8) == at::<8>(b, n - 8),
        _ => a == b,
    }
}

/// The index of the first non-digit at or after `i`, or `buf.len()`; eight bytes at a time:
/// a byte is a digit when its high nibble is 3 both as is and plus 6 (0x30..=0x39).
#[inline]
fn digits_end(buf: &[u8], mut i: usize) -> usize {
    while let Some(x) = word(buf, i) {
        // Carries out of a byte only leave non-digits (0xFA..), so the lowest hit is exact.
        let not_digit = ((x & (ONES * 0xF0)) ^ (ONES * 0x30)) | ((x.wrapping_add(ONES * 6) & (ONES * 0xF0)) ^ (ONES * 0x30));
        if not_digit != 0 {
            return i + (not_digit.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(b'0'..=b'9') = buf.get(i) {
        i += 1;
    }
    i
}

impl<'a> Scanner<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Scanner<'a> {
        Scanner { buf, pos: 0, failure: (0, "", false) }
    }

    /// Fails with `what` at byte `at`.
    #[cold]
    #[inline(never)]
    pub(super) fn fail(&mut self, at: usize, what: &'static str) -> Bad {
        self.failure = (at, what, false);
        Bad
    }

    /// Fails at the current position, expecting `what`.
    #[cold]
    #[inline(never)]
    pub(super) fn expected(&mut self, what: &'static str) -> Bad {
        self.failure = (self.pos, what, true);
        Bad
    }

    /// The Malformed error of the last failure, e.g. "invalid JSON at byte 17: expected ':'
    /// after a key, found '}'".
    #[cold]
    pub(super) fn error(&self) -> DecodeError {
        let (at, what, expected) = self.failure;
        let message = if expected {
            let found = match self.buf.get(at) {
                None => "the end of the record".to_string(),
                Some(&c) if c.is_ascii_graphic() => format!("'{}'", char::from(c)),
                Some(c) => format!("byte 0x{c:02x}"),
            };
            format!("invalid JSON at byte {at}: expected {what}, found {found}")
        } else {
            format!("invalid JSON at byte {at}: {what}")
        };
        DecodeError::new(DecodeErrorKind::Malformed, message)
    }

    #[inline]
    pub(super) fn position(&self) -> usize {
        self.pos
    }

    /// The raw bytes from `start` to the current position (a number's text).
    pub(super) fn since(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or_default()
    }

    #[inline(always)]
    pub(super) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Consumes `c` if it is next.
    #[inline(always)]
    pub(super) fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.pos += usize::from(hit);
        hit
    }

    #[inline]
    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Consumes `name` and a closing quote if they are next: a key that is exactly `name`
    /// (which must hold no `"` or `\\`).
    #[inline(always)]
    pub(super) fn eat_key(&mut self, name: &[u8]) -> bool {
        let end = self.pos + name.len();
        let hit = self.buf.get(end) == Some(&b'"') && self.buf.get(self.pos..end).is_some_and(|k| same_bytes(k, name));
        if hit {
            self.pos = end + 1;
        }
        hit
    }

    /// Consumes `c` if it is next after any whitespace.
    #[inline(always)]
    pub(super) fn eat_after_ws(&mut self, c: u8) -> bool {
        if self.eat(c) {
            return true;
        }
        self.skip_ws();
        self.eat(c)
    }

    #[inline(always)]
    pub(super) fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.buf.get(self.pos) {
            self.pos += 1;
        }
    }

    /// Consumes `word` (`true`, `false` or `null`) or fails.
    pub(super) fn literal(&mut self, word: &'static [u8]) -> Scan<()> {
        if self.buf.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            return Ok(());
        }
        Err(self.fail(self.pos, "expected `true`, `false` or `null`"))
    }

    /// Consumes a run of digits; how many.
    #[inline]
    fn digits(&mut self) -> usize {
        let start = self.pos;
        self.pos = digits_end(self.buf, start);
        self.pos - start
    }

    /// Scans a number's grammar (`-`? int frac? exp?) from its first byte. `Some(digits)`:
    /// the digits of an integer without fraction or exponent; `None`: a float.
    #[inline(always)]
    fn scan_number(&mut self) -> Scan<Option<&'a [u8]>> {
        self.eat(b'-');
        let start = self.pos;
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.fail(self.pos, "leading zero in a number"));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.expected("a digit")),
        }
        let int = self.buf.get(start..self.pos);
        let mut float = false;
        if self.eat(b'.') {
            float = true;
            if self.digits() == 0 {
                return Err(self.expected("a digit after the decimal point"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            float = true;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.expected("a digit in the exponent"));
            }
        }
        Ok(if float { None } else { int })
    }

    /// A number, from its first byte (`-` or a digit). Floats beyond the f64 range fail as in
    /// serde_json ("number out of range"); integers are exact.
    pub(super) fn number(&mut self) -> Scan<Number> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        let magnitude = self.scan_number()?.and_then(|digits| {
            if digits.len() <= 19 {
                // At most 19 digits always fit a u64.
                Some(digits.iter().fold(0u64, |m, &d| m * 10 + u64::from(d - b'0')))
            } else {
                digits.iter().try_fold(0u64, |m, &d| m.checked_mul(10)?.checked_add(u64::from(d - b'0')))
            }
        });
        match magnitude {
            Some(m) if !negative => Ok(match i64::try_from(m) {
                Ok(v) => Number::Int(v),
                Err(_) => Number::Big(m),
            }),
            Some(m) => {
                // As serde_json: -0 and magnitudes beyond i64::MIN are floats.
                let v = (m as i64).wrapping_neg();
                Ok(if v >= 0 { Number::Float(-(m as f64)) } else { Number::Int(v) })
            }
            None => {
                let text = self.buf.get(start..self.pos).and_then(|t| std::str::from_utf8(t).ok());
                match text.and_then(|t| t.parse::<f64>().ok()) {
                    Some(v) if v.is_finite() => Ok(Number::Float(v)),
                    _ => Err(self.fail(start, "number out of range")),
                }
            }
        }
    }

    /// Skips one value at the current position (after whitespace), checking its structure.
    #[inline(always)]
    pub(super) fn skip_value(&mut self) -> Scan<()> {
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                self.skip_string()
            }
            Some(b'-' | b'0'..=b'9') => self.scan_number().map(drop),
            Some(b'{' | b'[') => self.skip_nested(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => Err(self.expected("a value")),
        }
    }

    /// `skip_value` for an object or array. Iterative: nesting depth costs one bit each,
    /// kept on the heap beyond 64 levels (serde_json's `ignore_value` has no depth limit).
    #[inline(never)]
    fn skip_nested(&mut self) -> Scan<()> {
        let mut stack = Nesting::default();
        loop {
            // A value is next.
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    self.skip_string()?;
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.scan_number()?;
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(open @ (b'{' | b'[')) => {
                    self.pos += 1;
                    self.skip_ws();
                    let object = open == b'{';
                    if !self.eat(if object { b'}' } else { b']' }) {
                        stack.push(object);
                        if object {
                            self.skip_key()?;
                        }
                        continue;
                    }
                }
                _ => return Err(self.expected("a value")),
            }
            // After a value: close containers until one continues with a comma.
            loop {
                let Some(object) = stack.top() else { return Ok(()) };
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.skip_ws();
                        if object {
                            self.skip_key()?;
                        }
                        break;
                    }
                    Some(b'}') if object => self.pos += 1,
                    Some(b']') if !object => self.pos += 1,
                    _ => return Err(self.expected(if object { "',' or '}'" } else { "',' or ']'" })),
                }
                stack.pop();
            }
        }
    }

    /// In a skipped object, at a key (after whitespace): the key, `:` and the whitespace after.
    fn skip_key(&mut self) -> Scan<()> {
        if !self.eat(b'"') {
            return Err(self.expected("a key string"));
        }
        self.skip_string()?;
        self.skip_ws();
        if !self.eat(b':') {
            return Err(self.expected("':' after a key"));
        }
        self.skip_ws();
        Ok(())
    }
}

/// The open containers of a skipped value, one bit each (set: an object).
#[derive(Default)]
struct Nesting {
    depth: usize,
    low: u64,
    /// Levels 64 and up, 64 to a word.
    high: Vec<u64>,
}

impl Nesting {
    fn push(&mut self, object: bool) {
        let d = self.depth;
        if d < 64 {
            self.low = (self.low & !(1 << d)) | (u64::from(object) << d);
        } else {
            let (word, bit) = ((d - 64) / 64, (d - 64) % 64);
            if word == self.high.len() {
                self.high.push(0);
            }
            if let Some(w) = self.high.get_mut(word) {
                *w = (*w & !(1 << bit)) | (u64::from(object) << bit);
            }
        }
        self.depth = d + 1;
    }

    fn pop(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Whether the innermost open container is an object; `None` when none is open.
    fn top(&self) -> Option<bool> {
        let d = self.depth.checked_sub(1)?;
        if d < 64 {
            return Some(self.low >> d & 1 == 1);
        }
        let (word, bit) = ((d - 64) / 64, (d - 64) % 64);
        self.high.get(word).map(|w| w >> bit & 1 == 1)
    }
}
