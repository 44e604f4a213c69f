//! Admin accounts.

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError, now_unix};

/// How much technical detail the UI shows this user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiMode {
    /// Plain words, no jargon (the default).
    Basic,
    /// Technical detail and the "what I did" views.
    Advanced,
}

impl UiMode {
    pub fn as_str(self) -> &'static str {
        match self {
            UiMode::Basic => "basic",
            UiMode::Advanced => "advanced",
        }
    }

    pub fn parse(s: &str) -> Option<UiMode> {
        match s {
            "basic" => Some(UiMode::Basic),
            "advanced" => Some(UiMode::Advanced),
            _ => None,
        }
    }
}

/// An account as stored.
#[derive(Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub ui_mode: UiMode,
}

impl std::fmt::Debug for User {
    // The hash stays out of logs even though it is not the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish()
    }
}

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    let mode: String = r.get(3)?;
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        password_hash: r.get(2)?,
        ui_mode: UiMode::parse(&mode).unwrap_or(UiMode::Basic),
    })
}

impl Store {
    /// True once the box has an admin (it has been claimed).
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        self.call(|c| Ok(c.query_row("SELECT EXISTS(SELECT 1 FROM users)", [], |r| r.get(0))?))
            .await
    }

    /// Creates the first admin, atomically with forgetting the setup code, and only if no user
    /// exists yet: two people claiming at once cannot both win.
    pub async fn claim(&self, username: String, password_hash: String) -> Result<User, StoreError> {
        self.call(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let inserted = tx.execute(
                "INSERT INTO users(username, password_hash, created_at)
                 SELECT ?1, ?2, ?3 WHERE NOT EXISTS (SELECT 1 FROM users)",
                params![username, password_hash, now_unix()],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict("this homelab already has an admin"));
            }
            tx.execute("DELETE FROM secrets WHERE owner = 'system' AND purpose = 'setup-code'", [])?;
            let user = tx.query_row(
                "SELECT id, username, password_hash, ui_mode FROM users WHERE id = last_insert_rowid()",
                [],
                user_from_row,
            )?;
            tx.commit()?;
            Ok(user)
        })
        .await
    }

    pub async fn user_by_name(&self, username: String) -> Result<Option<User>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT id, username, password_hash, ui_mode FROM users WHERE username = ?1",
                [username],
                user_from_row,
            )
            .optional()?)
        })
        .await
    }

    pub async fn set_ui_mode(&self, user_id: i64, mode: UiMode) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "UPDATE users SET ui_mode = ?1 WHERE id = ?2",
                params![mode.as_str(), user_id],
            )?;
            Ok(())
        })
        .await
    }

    /// Replaces a hash with one of the same password made with newer parameters, unless the
    /// password changed meanwhile. Sessions stay: the password did not change.
    pub async fn upgrade_password_hash(
        &self,
        user_id: i64,
        old_hash: String,
        new_hash: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "UPDATE users SET password_hash = ?1 WHERE id = ?2 AND password_hash = ?3",
                params![new_hash, user_id, old_hash],
            )?;
            Ok(())
        })
        .await
    }

    /// Replaces a password hash and ends every session of that user in one transaction.
    pub async fn set_password(
        &self,
        user_id: i64,
        password_hash: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE users SET password_hash = ?1 WHERE id = ?2",
                params![password_hash, user_id],
            )?;
            let ended = tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
            tx.commit()?;
            Ok(ended)
        })
        .await
        .map(|ended| self.announce_sessions_ended(ended))
    }
}
