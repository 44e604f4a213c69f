//! Browser sessions, stored by the SHA-256 of their token.

use rusqlite::{OptionalExtension, params};

use super::users::UiMode;
use super::{Store, StoreError, now_unix};

/// A live session joined with its user.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user_id: i64,
    pub username: String,
    pub ui_mode: UiMode,
    pub last_seen_at: i64,
}

impl Store {
    pub async fn create_session(
        &self,
        token_hash: Vec<u8>,
        user_id: i64,
        client_addr: String,
        user_agent: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            let now = now_unix();
            c.execute(
                "INSERT INTO sessions(token_hash, user_id, created_at, last_seen_at, client_addr, user_agent)
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5)",
                params![token_hash, user_id, now, client_addr, user_agent],
            )?;
            Ok(())
        })
        .await
    }

    /// Looks a session up; a session idle for longer than `idle_secs` is deleted and not
    /// returned. `touch_after_secs` limits how often `last_seen_at` is rewritten (a write per
    /// request would be wasteful on an SD card).
    pub async fn session(
        &self,
        token_hash: Vec<u8>,
        idle_secs: i64,
        touch_after_secs: i64,
    ) -> Result<Option<SessionRow>, StoreError> {
        // Read on the reader: most requests only look, and must not queue behind a write. The
        // writer is used only when there is something to change (an expiry, a stale touch).
        let hash = token_hash.clone();
        let row = self
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT s.user_id, u.username, u.ui_mode, s.last_seen_at
                     FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1",
                    [&hash],
                    |r| {
                        let mode: String = r.get(2)?;
                        Ok(SessionRow {
                            user_id: r.get(0)?,
                            username: r.get(1)?,
                            ui_mode: UiMode::parse(&mode).unwrap_or(UiMode::Basic),
                            last_seen_at: r.get(3)?,
                        })
                    },
                )
                .optional()?)
            })
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let now = now_unix();
        if now - row.last_seen_at > idle_secs {
            let ended = self
                .call(move |c| {
                    Ok(c.execute("DELETE FROM sessions WHERE token_hash = ?1", [&token_hash])?)
                })
                .await?;
            self.announce_sessions_ended(ended);
            return Ok(None);
        }
        if now - row.last_seen_at > touch_after_secs {
            self.call(move |c| {
                c.execute(
                    "UPDATE sessions SET last_seen_at = ?1 WHERE token_hash = ?2",
                    params![now, token_hash],
                )?;
                Ok(())
            })
            .await?;
        }
        Ok(Some(row))
    }

    pub async fn delete_session(&self, token_hash: Vec<u8>) -> Result<(), StoreError> {
        self.call(move |c| {
            Ok(c.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?)
        })
        .await
        .map(|ended| self.announce_sessions_ended(ended))
    }

    /// Ends every session of a user; returns how many there were.
    pub async fn delete_user_sessions(&self, user_id: i64) -> Result<usize, StoreError> {
        self.call(move |c| Ok(c.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?))
            .await
            .inspect(|ended| self.announce_sessions_ended(*ended))
    }

    pub async fn count_user_sessions(&self, user_id: i64) -> Result<i64, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM sessions WHERE user_id = ?1",
                [user_id],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// Removes sessions idle for longer than `idle_secs` (housekeeping).
    pub async fn purge_idle_sessions(&self, idle_secs: i64) -> Result<usize, StoreError> {
        self.call(move |c| {
            Ok(c.execute(
                "DELETE FROM sessions WHERE last_seen_at < ?1",
                [now_unix() - idle_secs],
            )?)
        })
        .await
        .inspect(|ended| self.announce_sessions_ended(*ended))
    }

    /// When a session expires (Unix seconds) if it stays idle, or `None` when it no longer
    /// exists. One that is found idle for longer than `idle_secs` is deleted, as a request with
    /// its cookie would do. Does not refresh the session.
    pub async fn session_expiry(
        &self,
        token_hash: Vec<u8>,
        idle_secs: i64,
    ) -> Result<Option<i64>, StoreError> {
        let (expiry, ended) = self
            .call(move |c| {
                let last_seen: Option<i64> = c
                    .query_row(
                        "SELECT last_seen_at FROM sessions WHERE token_hash = ?1",
                        [&token_hash],
                        |r| r.get(0),
                    )
                    .optional()?;
                match last_seen {
                    None => Ok((None, 0)),
                    Some(t) if now_unix() - t > idle_secs => {
                        let ended =
                            c.execute("DELETE FROM sessions WHERE token_hash = ?1", [&token_hash])?;
                        Ok((None, ended))
                    }
                    Some(t) => Ok((Some(t.saturating_add(idle_secs)), 0)),
                }
            })
            .await?;
        self.announce_sessions_ended(ended);
        Ok(expiry)
    }

    /// Wakes whoever watches for ended sessions (open event streams), when any ended.
    pub(super) fn announce_sessions_ended(&self, ended: usize) {
        if ended > 0 {
            self.sessions_ended.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Changes each time sessions are deleted; the watcher then re-checks its own session.
    pub fn watch_sessions_ended(&self) -> tokio::sync::watch::Receiver<u64> {
        self.sessions_ended.subscribe()
    }
}

impl Store {
    /// True while a session exists (not signed out); does not refresh it.
    pub async fn session_exists(&self, token_hash: Vec<u8>) -> Result<bool, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT EXISTS(SELECT 1 FROM sessions WHERE token_hash = ?1)",
                [token_hash],
                |r| r.get(0),
            )?)
        })
        .await
    }
}
