//! A small binary codec for state values: varints, fixed-width numbers and length-prefixed
//! bytes. Every value written to state starts with a format version byte, so a later release
//! can read what an earlier one wrote (Arroyo's MigratableState idea).

/// Why state bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("state value ends early")]
    Truncated,
    #[error("state value has format version {0}, this release reads up to {1}")]
    UnknownVersion(u8, u8),
    #[error("state value is corrupt: {0}")]
    Corrupt(&'static str),
}

/// Appends encodings to a buffer.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer { buf: Vec::with_capacity(32) }
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }
}

/// Reads encodings from a slice.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub fn u8(&mut self) -> Result<u8, CodecError> {
        let (&b, rest) = self.buf.split_first().ok_or(CodecError::Truncated)?;
        self.buf = rest;
        Ok(b)
    }
    pub fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(CodecError::Corrupt("varint longer than 10 bytes"))
    }
    pub fn i64(&mut self) -> Result<i64, CodecError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> Result<f64, CodecError> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    pub fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = usize::try_from(self.varint()?).map_err(|_| CodecError::Corrupt("length"))?;
        if n > self.buf.len() {
            return Err(CodecError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn array(&mut self) -> Result<[u8; 8], CodecError> {
        if self.buf.len() < 8 {
            return Err(CodecError::Truncated);
        }
        let (head, rest) = self.buf.split_at(8);
        self.buf = rest;
        let mut a = [0u8; 8];
        a.copy_from_slice(head);
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(a: u64, b: i64, c: f64, d in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut w = Writer::new();
            w.varint(a);
            w.i64(b);
            w.f64(c);
            w.bytes(&d);
            let mut r = Reader::new(&w.buf);
            prop_assert_eq!(r.varint().unwrap(), a);
            prop_assert_eq!(r.i64().unwrap(), b);
            prop_assert_eq!(r.f64().unwrap().to_bits(), c.to_bits());
            prop_assert_eq!(r.bytes().unwrap(), &d[..]);
            prop_assert!(r.is_empty());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut r = Reader::new(&bytes);
            let _ = r.varint();
            let _ = r.bytes();
            let _ = r.i64();
        }
    }
}
