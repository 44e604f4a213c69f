//! Placement at scale: ranks 10 000 devices for one app and reports the time per ranking.
//! Run with `cargo bench --bench placement` (release build). Goal: ≤ 10 ms.

use std::time::{Duration, Instant};

use homelabd::catalog::DataGrowth;
use homelabd::placement::{Candidate, Need, rank};

fn main() {
    let need = Need {
        slug: "immich".into(),
        ram_min: 4 << 30,
        ram_recommended: 6 << 30,
        storage_min: 20 << 30,
        storage_recommended: 250 << 30,
        cpu_min: 2,
        cpu_recommended: 4,
        architectures: vec!["amd64".into(), "arm64".into()],
        host_ports: vec![2283],
        data_grows: Some(DataGrowth::Photos),
        uses_gpu: true,
    };
    // A varied fleet, deterministic (no RNG dependency): sizes and loads cycle with the index.
    let devices: Vec<Candidate> = (0..10_000)
        .map(|i: i64| Candidate {
            id: i,
            name: format!("device-{i:05}"),
            online: i % 17 != 0,
            docker_ok: i % 23 != 0,
            arch: if i % 3 == 0 {
                "aarch64".into()
            } else {
                "x86_64".into()
            },
            mem_available: ((i % 32) as u64 + 1) << 30,
            disk_free: ((i % 500) as u64 + 1) << 30,
            cores: (i % 16) as u32 + 1,
            load: [
                (i % 10) as f64 / 3.0,
                (i % 7) as f64 / 3.0,
                (i % 5) as f64 / 3.0,
            ],
            uptime: (i % 100) as f64 / 100.0,
            used_ports: if i % 11 == 0 {
                vec![22, 2283]
            } else {
                vec![22, 80]
            },
            apps: if i % 13 == 0 {
                vec!["immich".into()]
            } else {
                (0..i % 4).map(|a| format!("app-{a}")).collect()
            },
            gpu: i % 5 == 0,
        })
        .collect();
    let runs = 50;
    let mut best = Duration::MAX;
    let mut total = Duration::ZERO;
    for _ in 0..runs {
        let start = Instant::now();
        let v = rank(&need, &devices);
        let took = start.elapsed();
        assert_eq!(v.len(), devices.len());
        std::hint::black_box(v);
        best = best.min(took);
        total += took;
    }
    println!(
        "placement: 10000 devices, {runs} runs: mean {:.2} ms, best {:.2} ms",
        total.as_secs_f64() * 1000.0 / runs as f64,
        best.as_secs_f64() * 1000.0
    );
}
