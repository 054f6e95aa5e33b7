//! JSON strings for the scanner (`json_scan`): finding the end of a run of plain bytes
//! (a word at a time for short strings, 64-byte vectorised blocks for long ones), reading a
//! string borrowed or unescaped (`\uXXXX` and surrogate pairs included), and skipping one
//! while checking it. Byte-level code; depends only on `json_scan`.

use super::json_scan::{word, Scan, Scanner, Text, HIGH, ONES};

/// Whether `c` ends a run of plain string bytes: `"`, `\`, or (when `CTRL`) a control byte.
#[inline(always)]
fn special<const CTRL: bool>(c: u8) -> bool {
    (c == b'"') | (c == b'\\') | (CTRL & (c < 0x20))
}

/// The bytes of `x` that are `special` as their high bits: a byte equal to `c` is a zero byte
/// of `x ^ c`, found with Mycroft's `(v - 0x01..) & !v & 0x80..` test, exact for the lowest hit.
#[inline(always)]
fn special_bits<const CTRL: bool>(x: u64) -> u64 {
    let q = x ^ (ONES * u64::from(b'"'));
    let b = x ^ (ONES * u64::from(b'\\'));
    let mut m = (q.wrapping_sub(ONES) & !q) | (b.wrapping_sub(ONES) & !b);
    if CTRL {
        m |= x.wrapping_sub(ONES * 0x20) & !x;
    }
    m & HIGH
}

/// The index of the first `special` byte at or after `i`, or `buf.len()`. Short strings
/// are searched a word at a time inline; longer ones in `find_special_long`.
#[inline(always)]
fn find_special<const CTRL: bool>(buf: &[u8], mut i: usize) -> usize {
    for _ in 0..2 {
        let Some(x) = word(buf, i) else { break };
        let m = special_bits::<CTRL>(x);
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    find_special_long::<CTRL>(buf, i)
}

/// `find_special` for long strings: 64-byte blocks tested with a branch-free reduction that
/// the compiler vectorises, then 16-byte ones the same way, then words and bytes for the last
/// few bytes before the hit (or the end).
#[inline(never)]
fn find_special_long<const CTRL: bool>(buf: &[u8], mut i: usize) -> usize {
    while let Some(block) = buf.get(i..).and_then(<[u8]>::first_chunk::<64>) {
        if block.iter().fold(false, |hit, &c| hit | special::<CTRL>(c)) {
            break;
        }
        i += 64;
    }
    while let Some(block) = buf.get(i..).and_then(<[u8]>::first_chunk::<16>) {
        if block.iter().fold(false, |hit, &c| hit | special::<CTRL>(c)) {
            break;
        }
        i += 16;
    }
    while let Some(x) = word(buf, i) {
        let m = special_bits::<CTRL>(x);
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = buf.get(i) {
        if special::<CTRL>(c) {
            return i;
        }
        i += 1;
    }
    buf.len()
}

/// Appends code point `n` (a surrogate too: WTF-8, as serde_json does for byte keys).
fn push_code_point(n: u32, out: &mut Vec<u8>) {
    // Truncating casts: each byte is masked to its bits first.
    match n {
        0..=0x7F => out.push(n as u8),
        0x80..=0x7FF => out.extend_from_slice(&[0xC0 | (n >> 6) as u8, 0x80 | (n & 0x3F) as u8]),
        0x800..=0xFFFF => {
            out.extend_from_slice(&[0xE0 | (n >> 12) as u8, 0x80 | ((n >> 6) & 0x3F) as u8, 0x80 | (n & 0x3F) as u8]);
        }
        _ => out.extend_from_slice(&[
            0xF0 | ((n >> 18) & 0x07) as u8,
            0x80 | ((n >> 12) & 0x3F) as u8,
            0x80 | ((n >> 6) & 0x3F) as u8,
            0x80 | (n & 0x3F) as u8,
        ]),
    }
}

fn hex_value(c: u8) -> Option<u16> {
    match c {
        b'0'..=b'9' => Some(u16::from(c - b'0')),
        b'a'..=b'f' => Some(u16::from(c - b'a' + 10)),
        b'A'..=b'F' => Some(u16::from(c - b'A' + 10)),
        _ => None,
    }
}

impl<'a> Scanner<'a> {
    /// A string whose opening quote is consumed. `VALUE`: a string value, which may not hold
    /// raw control bytes or unpaired surrogate escapes; else a key, which may (as in
    /// serde_json). Neither is checked for UTF-8 here.
    #[inline]
    pub(super) fn string<const VALUE: bool>(&mut self, scratch: &mut Vec<u8>) -> Scan<Text<'a>> {
        let start = self.pos;
        let i = find_special::<VALUE>(self.buf, start);
        match self.buf.get(i) {
            Some(b'"') => {
                self.pos = i + 1;
                Ok(Text::Raw(self.buf.get(start..i).unwrap_or_default()))
            }
            Some(b'\\') => {
                scratch.clear();
                scratch.extend_from_slice(self.buf.get(start..i).unwrap_or_default());
                self.pos = i;
                self.escaped::<VALUE>(scratch).map(|()| Text::Scratch)
            }
            Some(_) => Err(self.fail(i, "control character in a string")),
            None => Err(self.fail(i, "unterminated string")),
        }
    }

    /// The rest of a string from a backslash at `pos`, unescaped onto `scratch`.
    #[inline(never)]
    fn escaped<const VALUE: bool>(&mut self, scratch: &mut Vec<u8>) -> Scan<()> {
        loop {
            let at = self.pos;
            self.pos += 1;
            let Some(c) = self.peek() else { return Err(self.fail(self.pos, "unterminated string")) };
            self.pos += 1;
            match c {
                b'"' | b'\\' | b'/' => scratch.push(c),
                b'b' => scratch.push(0x08),
                b'f' => scratch.push(0x0C),
                b'n' => scratch.push(b'\n'),
                b'r' => scratch.push(b'\r'),
                b't' => scratch.push(b'\t'),
                b'u' => self.unicode_escape::<VALUE>(at, scratch)?,
                _ => return Err(self.fail(at, "invalid escape")),
            }
            let start = self.pos;
            let i = find_special::<VALUE>(self.buf, start);
            scratch.extend_from_slice(self.buf.get(start..i).unwrap_or_default());
            match self.buf.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(());
                }
                Some(b'\\') => self.pos = i,
                Some(_) => return Err(self.fail(i, "control character in a string")),
                None => return Err(self.fail(i, "unterminated string")),
            }
        }
    }

    /// Four hex digits.
    fn hex4(&mut self) -> Scan<u16> {
        let Some(digits) = self.buf.get(self.pos..self.pos + 4) else {
            return Err(self.fail(self.buf.len(), "unterminated string"));
        };
        let mut n = 0u16;
        for &d in digits {
            match hex_value(d) {
                Some(v) => n = (n << 4) | v,
                None => return Err(self.fail(self.pos, "invalid \\u escape")),
            }
        }
        self.pos += 4;
        Ok(n)
    }

    /// After `\u` (whose backslash is at `at`): the escape, and its low surrogate if it is a
    /// high one. Unpaired surrogates fail in values and are kept (as WTF-8) in keys; a
    /// backslash after a high surrogate that is not `\u` is left for the caller.
    #[cold]
    fn unicode_escape<const VALUE: bool>(&mut self, at: usize, scratch: &mut Vec<u8>) -> Scan<()> {
        let lone = |s: &mut Self| s.fail(at, "unpaired surrogate in a \\u escape");
        let mut n = self.hex4()?;
        if VALUE && (0xDC00..=0xDFFF).contains(&n) {
            return Err(lone(self));
        }
        loop {
            if !(0xD800..=0xDBFF).contains(&n) {
                push_code_point(u32::from(n), scratch);
                return Ok(());
            }
            match (self.peek(), self.buf.get(self.pos + 1)) {
                (None, _) | (Some(b'\\'), None) => return Err(self.fail(self.buf.len(), "unterminated string")),
                (Some(b'\\'), Some(b'u')) => self.pos += 2,
                _ if VALUE => return Err(lone(self)),
                _ => {
                    push_code_point(u32::from(n), scratch);
                    return Ok(());
                }
            }
            let low = self.hex4()?;
            if !(0xDC00..=0xDFFF).contains(&low) {
                if VALUE {
                    return Err(lone(self));
                }
                push_code_point(u32::from(n), scratch);
                n = low;
                continue;
            }
            let c = ((u32::from(n) - 0xD800) << 10 | (u32::from(low) - 0xDC00)) + 0x1_0000;
            push_code_point(c, scratch);
            return Ok(());
        }
    }

    /// Skips a string whose opening quote is consumed, checking its escapes and that it has no
    /// raw control bytes (not its UTF-8).
    #[inline(always)]
    pub(super) fn skip_string(&mut self) -> Scan<()> {
        loop {
            let i = find_special::<true>(self.buf, self.pos);
            match self.buf.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos = i + 2;
                    match self.buf.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                        Some(b'u') => {
                            self.hex4()?;
                        }
                        Some(_) => return Err(self.fail(i, "invalid escape")),
                        None => return Err(self.fail(self.buf.len(), "unterminated string")),
                    }
                }
                Some(_) => return Err(self.fail(i, "control character in a string")),
                None => return Err(self.fail(i, "unterminated string")),
            }
        }
    }
}
