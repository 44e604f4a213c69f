//! The daemon's shutdown flag, as every long-running loop waits on it (a leaf module: the
//! loops live in many layers, the flag is set by `app`).

use tokio::sync::watch;

/// Resolves once the shutdown flag is set (or its sender is gone).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
