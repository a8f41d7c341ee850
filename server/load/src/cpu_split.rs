//! CPU time by process group, read from Linux's `/proc`: where a run's CPU went on a
//! host that the server, its database, Redis and this tool share. Elsewhere (no
//! `/proc`) every snapshot is empty.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `/proc` reports times in `USER_HZ` ticks, which Linux fixes at 100 per second.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds used so far by each group of processes (or of the server's threads),
/// and the host's total and stolen CPU ticks.
#[derive(Debug, Default)]
pub struct Snapshot(BTreeMap<&'static str, f64>, Option<HostTicks>);

/// The `cpu` line of `/proc/stat`: all ticks, and those the hypervisor gave to other
/// guests while this one wanted to run (steal).
#[derive(Debug, Clone, Copy)]
pub struct HostTicks {
    total: u64,
    steal: u64,
}

impl HostTicks {
    /// The host's ticks from the first line of `/proc/stat` (`None` without it): a read
    /// of one file, for callers that want the steal and not every process's time.
    pub fn now() -> Option<Self> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        parse_cpu_line(text.lines().next()?)
    }

    /// The share of the host's CPU time stolen by the hypervisor between `before` and
    /// these ticks, in percent. A stall that shows here is the host's, not the server's.
    pub fn steal_percent_since(self, before: Self) -> Option<f64> {
        let total = self.total.checked_sub(before.total).filter(|t| *t > 0)?;
        let steal = self.steal.saturating_sub(before.steal);
        Some((steal as f64 * 1000.0 / total as f64).round() / 10.0)
    }
}

impl Snapshot {
    /// Reads every process's CPU time now. Groups: `gatehouse_hashing` (the server's
    /// Argon2 threads), `gatehouse_other` (the rest of the server), `postgres` (every
    /// Postgres process), `redis`, and `load_tool` (this process).
    pub fn take() -> Self {
        let mut groups = BTreeMap::new();
        let host = HostTicks::now();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Self(groups, host);
        };
        let own = std::process::id().to_string();
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Some((comm, seconds)) = stat(&format!("/proc/{pid}/stat")) else {
                continue;
            };
            let group = match comm.as_str() {
                _ if pid == own => "load_tool",
                "gatehouse" => {
                    server_threads(&pid, &mut groups);
                    continue;
                }
                c if c.starts_with("postgres") => "postgres",
                c if c.starts_with("redis-server") => "redis",
                _ => continue,
            };
            *groups.entry(group).or_default() += seconds;
        }
        Self(groups, host)
    }

    /// [`HostTicks::steal_percent_since`] between `before` and this snapshot.
    pub fn steal_percent_since(&self, before: &Snapshot) -> Option<f64> {
        self.1?.steal_percent_since(before.1?)
    }

    /// Milliseconds of CPU per request in each group between `before` and this snapshot.
    pub fn per_request_since(&self, before: &Snapshot, requests: usize) -> Value {
        let mut out = Map::new();
        for (group, seconds) in &self.0 {
            let used = seconds - before.0.get(group).copied().unwrap_or(0.0);
            let ms = used * 1000.0 / requests.max(1) as f64;
            out.insert((*group).to_owned(), json_ms(ms));
        }
        Value::Object(out)
    }
}

/// Splits the server's time between its hashing threads and the rest.
fn server_threads(pid: &str, groups: &mut BTreeMap<&'static str, f64>) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for task in tasks.flatten() {
        let Some((comm, seconds)) = stat(&format!("{}/stat", task.path().display())) else {
            continue;
        };
        let group = if comm.starts_with("gatehouse-hash") { "gatehouse_hashing" } else { "gatehouse_other" };
        *groups.entry(group).or_default() += seconds;
    }
}

/// `cpu  user nice system idle iowait irq softirq steal …` (guest time is already
/// counted in user and nice, so it is not added again).
fn parse_cpu_line(line: &str) -> Option<HostTicks> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields.take(8).map(str::parse).collect::<Result<_, _>>().ok()?;
    Some(HostTicks { total: ticks.iter().sum(), steal: *ticks.get(7)? })
}

/// A `stat` file's command name and user + system CPU seconds.
fn stat(path: &str) -> Option<(String, f64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    // After the name: state (field 3), …, utime (14), stime (15).
    let mut fields = text.get(close + 2..)?.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((comm, (user + system) / TICKS_PER_SECOND))
}

fn json_ms(ms: f64) -> Value {
    serde_json::json!((ms * 1000.0).round() / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_its_own_group_and_its_work_shows() {
        let before = Snapshot::take();
        let started = std::time::Instant::now();
        let mut x = 0_u64;
        // Spin until 50 ms of CPU show up as this tool's (bounded: 20 s of wall time).
        let used = loop {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
            }
            let split = Snapshot::take().per_request_since(&before, 1);
            let used = split["load_tool"].as_f64().unwrap_or_default();
            if used >= 50.0 || started.elapsed() > std::time::Duration::from_secs(20) {
                break used;
            }
        };
        assert!(used >= 50.0, "this process's CPU shows as load_tool: {used} ms");
    }

    #[test]
    fn steal_is_read_from_the_eighth_field_of_the_cpu_line() {
        let ticks = parse_cpu_line("cpu  100 10 50 800 20 0 5 15 0 0").unwrap_or(HostTicks { total: 0, steal: 0 });
        assert_eq!((ticks.total, ticks.steal), (1000, 15));
        assert!(parse_cpu_line("cpu0 1 2 3 4 5 6 7 8").is_none(), "a single core's line is not the host's");
        let before = Snapshot(BTreeMap::new(), Some(HostTicks { total: 1000, steal: 15 }));
        let after = Snapshot(BTreeMap::new(), Some(HostTicks { total: 1400, steal: 35 }));
        assert_eq!(after.steal_percent_since(&before), Some(5.0));
    }

    #[test]
    fn a_stat_line_with_spaces_and_parentheses_in_the_name_parses() {
        let dir = std::env::temp_dir().join(format!("gh-cpu-split-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let path = dir.join("stat");
        let line = "42 (odd (name) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1 2 3\n";
        std::fs::write(&path, line).unwrap_or_default();
        let parsed = stat(path.to_str().unwrap_or_default());
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(parsed, Some(("odd (name) x".to_owned(), 3.0)));
    }
}
