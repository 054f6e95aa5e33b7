//! Resource usage for benchmark reports: CPU time (user + system) and peak resident set size
//! from getrusage, for this process or its waited-for children. Linux only.

use std::time::Duration;

/// CPU time and peak RSS.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub cpu: Duration,
    pub max_rss_bytes: u64,
}

fn rusage(who: libc::c_int) -> Usage {
    // SAFETY: getrusage only writes into the zeroed struct we pass it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return Usage::default();
    }
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    Usage { cpu: tv(ru.ru_utime) + tv(ru.ru_stime), max_rss_bytes: ru.ru_maxrss as u64 * 1024 }
}

/// This process so far.
pub fn current() -> Usage {
    rusage(libc::RUSAGE_SELF)
}

/// All children this process has waited for.
pub fn children() -> Usage {
    rusage(libc::RUSAGE_CHILDREN)
}

/// Peak resident set size of a running process (VmHWM), in KiB.
pub fn high_water_mark_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The 1-minute load average, from /proc/loadavg.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn usage_grows_with_work_and_rss_is_nonzero() {
        let before = super::current();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = super::current();
        assert!(after.cpu >= before.cpu);
        assert!(after.max_rss_bytes > 0);
    }
}
