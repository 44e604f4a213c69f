//! The AdGuard Home fake (lab/fakes/adguard.py, a stand-in for the service's published REST
//! API: AdGuard Home itself cannot run here), started for one test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The fake, stopped (by its pid) when dropped.
pub struct Fake {
    child: Child,
    pub url: String,
    _state: tempfile::TempPath,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Starts the fake with `seed` as its state; returns once it listens (it prints "ready <port>").
pub fn fake(seed: serde_json::Value) -> Fake {
    let mut state = tempfile::NamedTempFile::new().expect("a temporary file");
    std::io::Write::write_all(&mut state, seed.to_string().as_bytes()).expect("seed written");
    let state = state.into_temp_path();
    let mut child = Command::new("python3")
        .arg(repo().join("lab/fakes/adguard.py"))
        .args(["--port", "0", "--state"])
        .arg(&state)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the fake");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("the fake's first line");
    let port = line
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("the fake did not start: {line:?}"))
        .trim()
        .to_string();
    Fake {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _state: state,
    }
}
