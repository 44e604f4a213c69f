//! Migrations on real SQLite files.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use common::*;
use homelabd::store::{SCHEMA_VERSION, Store, StoreError};

fn user_version(path: &std::path::Path) -> i64 {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn fresh_database_is_migrated_and_rerunning_is_a_no_op() {
    let dir = data_dir("migrate");
    let path = dir.join("homelab.db");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    store.setting_init("probe", "kept".into()).await.unwrap();
    store.close().await.unwrap();

    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(
        store.setting("probe").await.unwrap().as_deref(),
        Some("kept"),
        "data survives a re-run"
    );
    // WAL and foreign keys are on.
    store.close().await.unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused_untouched() {
    let dir = data_dir("newer-schema");
    let path = dir.join("homelab.db");
    Store::open(&path).unwrap().close().await.unwrap();
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 5)
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path)
        .err()
        .expect("a newer schema must be refused");
    assert!(matches!(err, StoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 5));
    let msg = err.to_string();
    assert!(
        msg.contains("newer homelabd") && msg.contains("not touched"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file was modified"
    );
    assert_eq!(user_version(&path), SCHEMA_VERSION + 5);
}

#[tokio::test]
async fn closed_store_refuses_further_calls() {
    let store = Store::open(&data_dir("closed").join("homelab.db")).unwrap();
    store.close().await.unwrap();
    assert!(matches!(store.ping().await, Err(StoreError::Closed)));
    // Closing twice is fine.
    store.close().await.unwrap();
}

#[tokio::test]
async fn idle_sessions_expire_and_are_deleted() {
    let store = Store::open(&data_dir("idle").join("homelab.db")).unwrap();
    let user = store
        .claim("admin".into(), "$argon2id$not-used-here".into())
        .await
        .unwrap();
    store
        .create_session(vec![1; 32], user.id, "127.0.0.1".into(), "test".into())
        .await
        .unwrap();
    store
        .create_session(vec![2; 32], user.id, "127.0.0.1".into(), "test".into())
        .await
        .unwrap();
    // Within the idle limit the session resolves to its user.
    let row = store
        .session(vec![1; 32], 3600, 60)
        .await
        .unwrap()
        .expect("live session");
    assert_eq!(row.username, "admin");
    // Past the idle limit (here: any age beyond -1 s) it is refused and removed, and whoever
    // watches for ended sessions (open event streams) hears of it.
    let mut ended = store.watch_sessions_ended();
    assert!(!ended.has_changed().unwrap());
    assert!(store.session(vec![2; 32], -1, 60).await.unwrap().is_none());
    assert!(ended.has_changed().unwrap());
    ended.mark_unchanged();
    assert!(!store.session_exists(vec![2; 32]).await.unwrap());
    assert!(store.session_exists(vec![1; 32]).await.unwrap());
    // A live session says when it would expire; looking does not end it.
    let expiry = store.session_expiry(vec![1; 32], 3600).await.unwrap();
    assert!(expiry.is_some_and(|t| t > homelabd::store::now_unix()));
    assert!(!ended.has_changed().unwrap());
    assert_eq!(store.session_expiry(vec![2; 32], 3600).await.unwrap(), None);
    // Housekeeping sweeps idle ones in bulk.
    assert_eq!(store.purge_idle_sessions(-1).await.unwrap(), 1);
    assert!(ended.has_changed().unwrap());
    assert_eq!(store.count_user_sessions(user.id).await.unwrap(), 0);
    // A second claim on the same database is refused atomically.
    assert!(matches!(
        store.claim("other".into(), "x".into()).await,
        Err(StoreError::Conflict(_))
    ));
}
