//! Records of repartition topics: operator input rows in a compact binary form, and
//! watermark markers (a header, no value) that carry each upstream partition's watermark
//! to every downstream partition (DESIGN section 2).

use crate::types::{decode_key, encode_key_value, KeyDecodeError, Value};

/// Header of a watermark marker.
pub const H_MARKER: &str = "eddy.marker";
/// Headers carrying the original record, so a downstream late record can be forwarded as it was.
pub const H_ORIGINAL_VALUE: &str = "eddy.original.value";
pub const H_ORIGINAL_KEY: &str = "eddy.original.key";
pub const H_ORIGINAL_POSITION: &str = "eddy.original.position";

pub const ROW_VERSION: u8 = 1;

/// Encodes an operator input row `[event_time, keys..., values...]`.
pub fn encode_row(row: &[Value], out: &mut Vec<u8>) {
    out.push(ROW_VERSION);
    for v in row {
        encode_key_value(v, out);
    }
}

/// Why a repartition record could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InternalError {
    #[error("repartition record has version {0}; this release reads version 1")]
    Version(u8),
    #[error("repartition record is empty")]
    Empty,
    #[error("repartition record is corrupt: {0}")]
    Corrupt(#[from] KeyDecodeError),
    #[error("watermark marker {0:?} is malformed")]
    Marker(String),
}

pub fn decode_row(bytes: &[u8]) -> Result<Vec<Value>, InternalError> {
    let (&version, rest) = bytes.split_first().ok_or(InternalError::Empty)?;
    if version != ROW_VERSION {
        return Err(InternalError::Version(version));
    }
    Ok(decode_key(rest)?)
}

/// One upstream partition's watermark, as of its last commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// The upstream (source) partition.
    pub upstream: u32,
    /// How many upstream partitions there are.
    pub upstreams: u32,
    pub watermark: i64,
    pub idle: bool,
}

impl Marker {
    /// `upstream/upstreams/watermark[/idle]`, human-readable in `eddy tail --envelope`.
    pub fn encode(&self) -> String {
        format!("{}/{}/{}{}", self.upstream, self.upstreams, self.watermark, if self.idle { "/idle" } else { "" })
    }

    pub fn parse(text: &str) -> Result<Marker, InternalError> {
        let bad = || InternalError::Marker(text.chars().take(64).collect());
        let mut parts = text.split('/');
        let upstream = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let upstreams = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let watermark = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let idle = match parts.next() {
            None => false,
            Some("idle") => true,
            Some(_) => return Err(bad()),
        };
        if parts.next().is_some() || upstream >= upstreams {
            return Err(bad());
        }
        Ok(Marker { upstream, upstreams, watermark, idle })
    }
}

/// Kafka's default partitioner (murmur2 of the key bytes), so a repartition topic is keyed
/// the way Kafka clients key topics.
pub fn partition_for(key: &[u8], partitions: usize) -> i32 {
    let h = murmur2(key) & 0x7fff_ffff;
    (h as usize % partitions.max(1)) as i32
}

/// Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2).
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip() {
        let row = vec![Value::Timestamp(5), Value::str("a"), Value::Null, Value::Double(1.5), Value::Long(-3)];
        let mut buf = Vec::new();
        encode_row(&row, &mut buf);
        assert_eq!(decode_row(&buf).unwrap(), row);
        assert_eq!(decode_row(&[9, 1]), Err(InternalError::Version(9)));
        assert!(decode_row(&[]).is_err());
    }

    #[test]
    fn markers_round_trip_and_reject_garbage() {
        let m = Marker { upstream: 3, upstreams: 8, watermark: -42, idle: true };
        assert_eq!(Marker::parse(&m.encode()), Ok(m));
        let m = Marker { upstream: 0, upstreams: 1, watermark: i64::MIN, idle: false };
        assert_eq!(Marker::parse(&m.encode()), Ok(m));
        for bad in ["", "1/2", "2/2/5", "a/2/5", "1/2/5/busy", "1/2/5/idle/x"] {
            assert!(Marker::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21") as i32, -973_932_308);
        assert_eq!(murmur2(b"foobar") as i32, -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1_486_304_829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32, -58_897_971);
        assert_eq!(murmur2(b"abc") as i32, 479_470_107);
    }
}
