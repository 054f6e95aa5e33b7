//! The in-engine benchmark's input: a source file read into memory a block at a time, with
//! the reading left out of the measured CPU time (the benchmark measures the engine on records
//! in memory; in a real run the Kafka client hands them over). Depends on `usage` only.

use std::io::Read;
use std::time::Duration;

use super::usage;

/// Records are read in blocks of this size (plus the record that crosses the end).
const BLOCK: usize = 8 << 20;

/// NDJSON records of one file, as slices of an in-memory block.
pub struct Records {
    file: std::fs::File,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl Records {
    pub fn new(file: std::fs::File) -> Records {
        Records { file, buf: Vec::with_capacity(BLOCK), pos: 0, eof: false }
    }

    /// The next record (without its newline); `untimed` grows by the CPU time spent reading
    /// the file, which the caller subtracts from its measurement.
    pub fn next(&mut self, untimed: &mut Duration) -> std::io::Result<Option<&[u8]>> {
        loop {
            let rest = &self.buf[self.pos..];
            if let Some(n) = memchr::memchr(b'\n', rest) {
                let start = self.pos;
                self.pos += n + 1;
                return Ok(Some(&self.buf[start..start + n]));
            }
            if self.eof {
                if rest.is_empty() {
                    return Ok(None);
                }
                let start = self.pos;
                self.pos = self.buf.len();
                return Ok(Some(&self.buf[start..]));
            }
            let before = usage::current().cpu;
            self.refill()?;
            *untimed += usage::current().cpu.saturating_sub(before);
        }
    }

    /// Keeps the unfinished record and appends the next block of the file.
    fn refill(&mut self) -> std::io::Result<()> {
        self.buf.drain(..self.pos);
        self.pos = 0;
        let n = (&mut self.file).take(BLOCK as u64).read_to_end(&mut self.buf)?;
        self.eof = n == 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_every_record_across_blocks_and_a_last_one_without_newline() {
        let dir = std::env::temp_dir().join(format!("eddy-bench-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("in.json");
        // Records that straddle the 8 MiB block boundary, and a last one with no newline.
        let mut text = String::new();
        let mut expected = Vec::new();
        let mut i = 0;
        while text.len() < BLOCK * 2 + 1000 {
            let r = format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 977));
            text.push_str(&r);
            text.push('\n');
            expected.push(r);
            i += 1;
        }
        text.push_str("{\"last\":1}");
        expected.push("{\"last\":1}".to_string());
        std::fs::write(&path, &text).unwrap();
        let mut records = Records::new(std::fs::File::open(&path).unwrap());
        let mut untimed = Duration::ZERO;
        let mut got = Vec::new();
        while let Some(r) = records.next(&mut untimed).unwrap() {
            got.push(String::from_utf8(r.to_vec()).unwrap());
        }
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "every record, in order, unchanged");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
