//! A server's CPU time (utime + stime of all its threads) and resident memory, from /proc.

/// CPU time used so far by process `pid`, in microseconds (utime + stime of /proc/PID/stat).
pub fn cpu_micros(pid: u32) -> std::io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat_ticks(&stat)
        .map(|ticks| ticks * 1_000_000 / clock_ticks_per_sec())
        .ok_or_else(|| std::io::Error::other(format!("unreadable /proc/{pid}/stat")))
}

/// utime + stime, in clock ticks, from the text of /proc/PID/stat.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces: skip past its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Resident set size of process `pid` in bytes (VmRSS of /proc/PID/status).
pub fn rss_bytes(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| std::io::Error::other(format!("no VmRSS in /proc/{pid}/status")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_past_a_name_with_spaces() {
        let s = "123 (a b) c) S 1 2 3 4 5 6 7 8 9 10 250 17 0 0 20 0";
        assert_eq!(parse_stat_ticks(s), Some(267));
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        assert!(rss_bytes(me).unwrap() > 0);
        assert!(cpu_micros(me).is_ok());
    }
}

/// CPU time all processes of the machine have used so far (every core's user, nice and
/// system time from /proc/stat), in microseconds. Interrupt and softirq time is left out: the
/// loopback traffic of the benchmark itself is processed there, and it is not charged to any
/// process, so it would read as a stranger's load.
pub fn machine_busy_micros() -> std::io::Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    parse_machine_busy(&stat)
        .map(|ticks| ticks * 1_000_000 / clock_ticks_per_sec())
        .ok_or_else(|| std::io::Error::other("unreadable /proc/stat"))
}

/// Busy ticks of the `cpu` line of /proc/stat.
pub fn parse_machine_busy(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice: already in user]
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    Some(at(0) + at(1) + at(2))
}

#[cfg(test)]
mod machine_tests {
    use super::*;

    #[test]
    fn busy_ticks_are_user_nice_and_system() {
        let s = "cpu  10 1 5 1000 7 2 3 4 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n";
        assert_eq!(parse_machine_busy(s), Some(10 + 1 + 5));
        assert!(machine_busy_micros().is_ok());
    }
}
