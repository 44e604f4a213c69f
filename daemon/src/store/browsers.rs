//! Known browsers: ones that signed in successfully, stored by the SHA-256 of their cookie.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, now_unix};

impl Store {
    /// Remembers (or refreshes) a browser for a user, keeping only the `keep` most recently
    /// used per user so the table stays small however often cookies are cleared.
    pub async fn remember_browser(
        &self,
        token_hash: Vec<u8>,
        user_id: i64,
        keep: i64,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            let now = now_unix();
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO known_browsers(token_hash, user_id, created_at, last_used_at)
                 VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT(token_hash) DO UPDATE SET last_used_at = ?3, user_id = ?2",
                params![token_hash, user_id, now],
            )?;
            tx.execute(
                "DELETE FROM known_browsers WHERE user_id = ?1 AND token_hash NOT IN (
                     SELECT token_hash FROM known_browsers WHERE user_id = ?1
                     ORDER BY last_used_at DESC, created_at DESC LIMIT ?2)",
                params![user_id, keep],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Forgets every browser of a user; returns how many there were.
    pub async fn forget_browsers(&self, user_id: i64) -> Result<usize, StoreError> {
        self.call(move |c| {
            Ok(c.execute("DELETE FROM known_browsers WHERE user_id = ?1", [user_id])?)
        })
        .await
    }

    /// The username a browser signed in as, if it is known and was used within `max_age_secs`
    /// (an older entry is deleted).
    pub async fn known_browser(
        &self,
        token_hash: Vec<u8>,
        max_age_secs: i64,
    ) -> Result<Option<String>, StoreError> {
        self.call(move |c| {
            let row: Option<(String, i64)> = c
                .query_row(
                    "SELECT u.username, b.last_used_at
                     FROM known_browsers b JOIN users u ON u.id = b.user_id
                     WHERE b.token_hash = ?1",
                    [&token_hash],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match row {
                Some((_, last)) if now_unix() - last > max_age_secs => {
                    c.execute(
                        "DELETE FROM known_browsers WHERE token_hash = ?1",
                        [&token_hash],
                    )?;
                    Ok(None)
                }
                Some((username, _)) => Ok(Some(username)),
                None => Ok(None),
            }
        })
        .await
    }
}
