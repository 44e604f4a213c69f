//! Runs after the whole suite (tests/run-all calls it last, by name): every password, session
//! token and API token the tests used must appear nowhere in plaintext in the data directories
//! or the captured logs. It is its own program (`test = false`, no harness) rather than a test
//! in the default run, because it must see what every other test left behind.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::path::{Path, PathBuf};

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let root = common::artifacts();
    let mut secret_files = Vec::new();
    files_under(&root.join("secrets"), &mut secret_files);
    let mut secrets: Vec<String> = Vec::new();
    for f in &secret_files {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            if line.len() >= 8 && !secrets.iter().any(|s| s == line) {
                secrets.push(line.to_string());
            }
        }
    }
    // The suite must actually have produced material, or this check proves nothing.
    assert!(
        secrets.len() >= 20,
        "only {} secrets recorded; did the suite run?",
        secrets.len()
    );
    let mut scanned = Vec::new();
    files_under(&root.join("data"), &mut scanned);
    files_under(&root.join("logs"), &mut scanned);
    let dbs = scanned
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "homelab.db"))
        .count();
    let logs = scanned
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .count();
    assert!(
        dbs >= 10 && logs >= 3,
        "too little to scan: {dbs} databases, {logs} logs"
    );

    let mut hits = Vec::new();
    let mut bytes_scanned = 0usize;
    for file in &scanned {
        let content = std::fs::read(file).unwrap();
        bytes_scanned += content.len();
        for s in &secrets {
            if content.windows(s.len()).any(|w| w == s.as_bytes()) {
                hits.push(format!(
                    "{} contains a secret starting {:.6}…",
                    file.display(),
                    s
                ));
            }
        }
    }
    println!(
        "leak scan: {} secrets, {} files, {} bytes, {} hits",
        secrets.len(),
        scanned.len(),
        bytes_scanned,
        hits.len()
    );
    assert!(
        hits.is_empty(),
        "plaintext secrets found:\n{}",
        hits.join("\n")
    );
    // The plain closing line CI reads (the assertions above abort with a failure first).
    println!("leak-scan: 1 passed, 0 failed");
}
