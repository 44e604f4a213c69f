//! Prometheus metrics: request counts and latency histograms per route, and process memory.
//! Hand-written text format: a few counters do not justify a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::{Method, header};
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

/// Counters keyed by (method, route pattern, status). Every part of the key comes from a closed
/// set, whatever clients send, so the number of series stays bounded: the method is one of
/// [`method_label`]'s, the route a pattern from our route table (or "unmatched"), and the status
/// one we answer with.
#[derive(Default)]
pub struct Metrics {
    // Held for a map update only; never across an await.
    series: Mutex<BTreeMap<(&'static str, String, u16), Series>>,
}

/// The metric label for a request method: the standard methods by name, anything a client made
/// up as "other" (each made-up method used to become a series of its own).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl Metrics {
    /// Counts one answered request. `route` must be a route-table pattern or "unmatched", never
    /// a raw path.
    pub fn record(&self, method: &Method, route: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let s = map
            .entry((method_label(method), route.to_string(), status))
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
            let agg = by_route.entry((*m, r.as_str())).or_default();
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

/// Escapes a label value for the text format (backslash, quote and newline, as the format says).
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
    out.push_str("# HELP homelab_heap_in_use_bytes Heap homelabd holds (live allocations).\n");
    out.push_str("# TYPE homelab_heap_in_use_bytes gauge\n");
    let _ = writeln!(out, "homelab_heap_in_use_bytes {}", crate::heap::in_use());
    out.push_str("# HELP homelab_device_polls_total Device polls begun.\n");
    out.push_str("# TYPE homelab_device_polls_total counter\n");
    let _ = writeln!(out, "homelab_device_polls_total {}", state.devices.polls());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_series() {
        let m = Metrics::default();
        for i in 0..100 {
            let method = Method::from_bytes(format!("FOO{i}").as_bytes()).unwrap_or_default();
            m.record(&method, "unmatched", 405, Duration::from_millis(1));
        }
        m.record(&Method::GET, "/healthz", 200, Duration::from_millis(1));
        let mut out = String::new();
        m.render(&mut out);
        let counters: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("homelab_http_requests_total{"))
            .collect();
        assert_eq!(
            counters,
            vec![
                "homelab_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1",
                "homelab_http_requests_total{method=\"other\",route=\"unmatched\",status=\"405\"} 100",
            ]
        );
        assert_eq!(method_label(&Method::PATCH), "PATCH");
    }
}
