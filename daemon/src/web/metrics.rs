//! Prometheus metrics: request counts and latency histograms per route, and process memory.
//! Hand-written text format: a few counters do not justify a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

/// Latency bucket bounds in seconds (upper, inclusive).
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum_secs: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Counters keyed by (method, route pattern, status). Route patterns (not raw paths) keep the
/// number of series bounded whatever URLs clients send.
#[derive(Default)]
pub struct Metrics {
    // Held for a map update only; never across an await.
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl Metrics {
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let s = map
            .entry((method.to_string(), route.to_string(), status))
            .or_default();
        s.count += 1;
        s.sum_secs += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                s.buckets[i] += 1;
            }
        }
    }

    fn render(&self, out: &mut String) {
        let map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP homelab_http_requests_total HTTP requests answered.\n");
        out.push_str("# TYPE homelab_http_requests_total counter\n");
        for ((m, r, st), s) in map.iter() {
            let _ = writeln!(
                out,
                "homelab_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{st}\"}} {}",
                esc(r),
                s.count
            );
        }
        out.push_str(
            "# HELP homelab_http_request_duration_seconds Time to answer HTTP requests.\n",
        );
        out.push_str("# TYPE homelab_http_request_duration_seconds histogram\n");
        // Histograms aggregate over status codes.
        let mut by_route: BTreeMap<(&str, &str), Series> = BTreeMap::new();
        for ((m, r, _), s) in map.iter() {
            let agg = by_route.entry((m.as_str(), r.as_str())).or_default();
            agg.count += s.count;
            agg.sum_secs += s.sum_secs;
            for i in 0..BUCKETS.len() {
                agg.buckets[i] += s.buckets[i];
            }
        }
        for ((m, r), s) in by_route {
            let labels = format!("method=\"{m}\",route=\"{}\"", esc(r));
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "homelab_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "homelab_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "homelab_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum_secs
            );
            let _ = writeln!(
                out,
                "homelab_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Resident and virtual memory of this process, in bytes, from /proc.
pub fn process_memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmSize:")?))
}

pub async fn endpoint(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::with_capacity(4096);
    state.metrics.render(&mut out);
    if let Some((rss, vsz)) = process_memory() {
        out.push_str("# HELP homelab_process_resident_memory_bytes Resident memory of homelabd.\n");
        out.push_str("# TYPE homelab_process_resident_memory_bytes gauge\n");
        let _ = writeln!(out, "homelab_process_resident_memory_bytes {rss}");
        out.push_str("# HELP homelab_process_virtual_memory_bytes Virtual memory of homelabd.\n");
        out.push_str("# TYPE homelab_process_virtual_memory_bytes gauge\n");
        let _ = writeln!(out, "homelab_process_virtual_memory_bytes {vsz}");
    }
    out.push_str("# HELP homelab_uptime_seconds Seconds since homelabd started.\n");
    out.push_str("# TYPE homelab_uptime_seconds gauge\n");
    let _ = writeln!(
        out,
        "homelab_uptime_seconds {}",
        state.started.elapsed().as_secs()
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}
