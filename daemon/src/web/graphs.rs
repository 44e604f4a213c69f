//! Each device's graphs of the last day (memory and load), drawn as small server-rendered SVGs
//! and kept once per change of the devices board. `AppState` holds the cache; the device page
//! shows the graphs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::AppState;
use super::error::WebError;
use super::per_board::PerBoard;
use crate::devices::board::Board;
use crate::store::{Sample, now_unix};

/// A device's graphs of the last day, as SVG (or a "No history yet." line).
pub struct Graphs {
    pub mem: String,
    pub load: String,
}

/// Each device's graphs, drawn once per change of the devices board (a poll adds a sample)
/// instead of reading a day of samples (1,440) on every load of its page.
pub type GraphsCache = PerBoard<Arc<Mutex<HashMap<i64, Arc<Graphs>>>>>;

/// The graphs of device `id` as of `board`; `mem_total` (bytes) scales the memory graph.
pub async fn for_device(
    state: &AppState,
    board: &Board,
    id: i64,
    mem_total: u64,
) -> Result<Arc<Graphs>, WebError> {
    let drawn = state
        .device_graphs
        .get_or(board.generation(), || Ok::<_, WebError>(Default::default()))?;
    if let Some(g) = drawn.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
        return Ok(g.clone());
    }
    let since = now_unix() - 24 * 3600;
    let samples = state.store.samples(id, since).await?;
    let mem_total = (mem_total as f64).max(1.0);
    let g = Arc::new(Graphs {
        mem: sparkline(
            &samples,
            since,
            |s| s.mem_used.map(|m| m as f64 / mem_total),
            Some(1.0),
        ),
        load: sparkline(&samples, since, |s| s.load1, None),
    });
    // At most one entry per device: the map belongs to one board generation.
    drawn
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, g.clone());
    Ok(g)
}

/// A small server-rendered SVG line graph of the last 24 h (gaps where the device was offline).
fn sparkline(
    samples: &[Sample],
    since: i64,
    value: impl Fn(&Sample) -> Option<f64>,
    max: Option<f64>,
) -> String {
    const W: f64 = 600.0;
    const H: f64 = 80.0;
    // One point per two units of width: a day has 1,440 samples, more than the graph can show
    // (and six times the page weight and render time). Each column is the mean of its samples,
    // a gap when the device was offline for all of them.
    const COLUMNS: usize = 300;
    let span = (now_unix() - since).max(1) as f64;
    let mut columns: Vec<(u32, u32, f64)> = vec![(0, 0, 0.0); COLUMNS]; // (samples, values, sum)
    for s in samples {
        let col = ((s.at - since) as f64 / span * COLUMNS as f64) as usize;
        let c = &mut columns[col.min(COLUMNS - 1)];
        c.0 += 1;
        if s.online
            && let Some(v) = value(s)
        {
            c.1 += 1;
            c.2 += v;
        }
    }
    let points: Vec<(f64, Option<f64>)> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.0 > 0)
        .map(|(i, c)| {
            let x = (i as f64 + 0.5) * W / COLUMNS as f64;
            (x, (c.1 > 0).then(|| c.2 / c.1 as f64))
        })
        .collect();
    let top = max.unwrap_or_else(|| {
        points
            .iter()
            .filter_map(|p| p.1)
            .fold(0.0_f64, f64::max)
            .max(1.0)
    });
    let mut paths = String::new();
    let mut current = String::new();
    // A lone point would draw nothing; a short tick makes it visible.
    let close = |path: &str| {
        if path.contains(" L") {
            format!("<path d=\"{path}\"/>")
        } else {
            format!("<path d=\"{path} l 4,0\"/>")
        }
    };
    for (x, v) in &points {
        match v {
            Some(v) => {
                let y = H - (v / top).clamp(0.0, 1.0) * (H - 4.0) - 2.0;
                current.push_str(&format!(
                    "{}{x:.1},{y:.1}",
                    if current.is_empty() { "M" } else { " L" }
                ));
            }
            None if !current.is_empty() => {
                paths.push_str(&close(&current));
                current.clear();
            }
            None => {}
        }
    }
    if !current.is_empty() {
        paths.push_str(&close(&current));
    }
    if paths.is_empty() {
        return "<p class=\"muted\">No history yet.</p>".into();
    }
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"graph\"><g fill=\"none\" stroke=\"currentColor\" stroke-width=\"2\" vector-effect=\"non-scaling-stroke\">{paths}</g></svg>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: i64, online: bool, load: f64) -> Sample {
        Sample {
            at,
            online,
            load1: Some(load),
            ..Sample::default()
        }
    }

    /// A day of minute samples becomes at most 300 points; an offline stretch breaks the line;
    /// a column shows the mean of its samples.
    #[test]
    fn a_day_of_samples_draws_a_bounded_graph_with_gaps_where_offline() {
        let since = now_unix() - 24 * 3600;
        let mut samples: Vec<Sample> = (0..1440)
            .map(|m| sample(since + m * 60, !(600..700).contains(&m), 1.0))
            .collect();
        let svg = sparkline(&samples, since, |s| s.load1, None);
        assert_eq!(svg.matches("<path").count(), 2, "one gap: {svg}");
        let points = svg.matches(',').count();
        assert!((250..=300).contains(&points), "{points} points");

        // Two samples in one column: the mean, not the last (a max of 4 puts 2 mid-height).
        samples = vec![sample(since + 60, true, 1.0), sample(since + 61, true, 3.0)];
        let svg = sparkline(&samples, since, |s| s.load1, Some(4.0));
        assert!(svg.contains(",40.0 l 4,0"), "{svg}");
        assert_eq!(
            sparkline(&[], since, |s| s.load1, None),
            "<p class=\"muted\">No history yet.</p>"
        );
    }
}
