//! Memory that never grows: the heap the process holds (counted by the daemon's allocator, see
//! `homelabd::heap`) is flat after thousands of Docker API calls over one pooled SSH
//! connection, and after a day's worth of polls of a lab device in fast-forward.
//!
//! Heap in use is process-wide, so the tests in this binary take turns (`ONE_AT_A_TIME`) and
//! nothing else runs here.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Options, eventually, lab};
use homelabd::heap;
use homelabd::secrets::Secret;
use homelabd::ssh::{self, HostKeyPolicy, Login, Session};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Lets freed memory settle: waits until the session has no socket channel left open (each
/// dropped stream waits for the device's close in a task of its own).
async fn settled(session: &Session) {
    eventually(
        "every socket channel closed by the device",
        Duration::from_secs(30),
        || async {
            match session.open_sockets() {
                0 => Ok(()),
                n => Err(format!("{n} open")),
            }
        },
    )
    .await;
}

fn kib(bytes: usize) -> f64 {
    bytes as f64 / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_docker_calls_over_one_connection_leave_the_heap_flat() {
    let _turn = ONE_AT_A_TIME.lock().await;
    common::init_logging();
    let login = Login::Password {
        user: lab::user(),
        password: Secret::from_string(lab::password()),
    };
    let session = Arc::new(
        ssh::connect(&lab::ip("nas-01"), 22, &login, HostKeyPolicy::FirstUse)
            .await
            .unwrap(),
    );
    let docker = homelabd::docker::connect(session.clone(), "/var/run/docker.sock")
        .await
        .unwrap();
    // Eight calls at a time, as a poll makes several at once; each on its own channel.
    let calls = |n: usize| {
        let docker = docker.clone();
        async move {
            for _ in 0..n / 8 {
                let batch = (0..8).map(|_| docker.ping());
                for r in futures_util::future::join_all(batch).await {
                    r.unwrap();
                }
            }
        }
    };
    // Warm-up: connection buffers, bollard's and hyper's first allocations, the runtime.
    calls(400).await;
    settled(&session).await;
    let before = heap::in_use();
    const CALLS: usize = 3000;
    calls(CALLS).await;
    settled(&session).await;
    let after = heap::in_use();
    let grown = after.saturating_sub(before);
    println!(
        "heap in use: {:.0} KiB before, {:.0} KiB after {CALLS} Docker API calls ({:.1} bytes per call)",
        kib(before),
        kib(after),
        grown as f64 / CALLS as f64
    );
    // Before the fix each call left ~3.4 KiB behind (17 MB here); allow a little noise.
    assert!(
        grown < 256 * 1024,
        "heap grew by {:.0} KiB over {CALLS} calls",
        kib(grown)
    );
    assert!(
        !session.is_closed(),
        "the connection is still the pooled one"
    );
    session.close().await;
}

/// Polls begun, from /metrics.
async fn polls(s: &common::TestServer, token: &str) -> u64 {
    let text = s.metrics(token).await;
    text.lines()
        .find_map(|l| l.strip_prefix("homelab_device_polls_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no poll counter on /metrics: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_polls_in_fast_forward_leaves_the_heap_flat() {
    let _turn = ONE_AT_A_TIME.lock().await;
    // Polls back to back instead of every 30 s.
    let mut opts = Options::new("memory-polls");
    opts.poll_interval = Duration::from_millis(1);
    let s = common::start_with(opts).await;
    let (session, _) = s.claim().await;
    let token = s.api_token(&session, "memory").await;
    common::add_lab_device(&s, &session, "NAS", "nas-01").await;
    let wait_for = |n: u64| {
        let (s, token) = (&s, &token);
        async move {
            let start = polls(s, token).await;
            // A poll took ~40 ms (debug build, busy machine; 190 ms before writes were batched):
            // the deadline allows 500 ms each.
            eventually(
                "the polls",
                Duration::from_secs(n / 2 + 60),
                || async move {
                    let done = polls(s, token).await - start;
                    if done > n {
                        Ok(())
                    } else {
                        Err(format!("{done} of {n}"))
                    }
                },
            )
            .await;
        }
    };
    wait_for(200).await; // warm-up: the connection, caches, the history's first minute
    let before = heap::in_use();
    // One device polled every 30 s for a day (720 polls took ~30 s here, debug build).
    const POLLS: u64 = 24 * 3600 / 30;
    wait_for(POLLS).await;
    let after = heap::in_use();
    let grown = after.saturating_sub(before);
    println!(
        "heap in use: {:.0} KiB before, {:.0} KiB after {POLLS} polls ({:.1} bytes per poll)",
        kib(before),
        kib(after),
        grown as f64 / POLLS as f64
    );
    // Before the fix each poll left ~13.7 KiB behind (38 MiB over this day).
    assert!(
        grown < 512 * 1024,
        "heap grew by {:.0} KiB over {POLLS} polls",
        kib(grown)
    );
    s.stop().await.unwrap();
}
