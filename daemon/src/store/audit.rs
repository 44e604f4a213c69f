//! The audit log: every state change, who made it, when, and from where.

use rusqlite::params;

use super::{Store, StoreError, now_unix};

/// One audit record.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    /// "admin" for a user, "token:<name>" for an API token, "system" for the daemon itself.
    pub actor: String,
    /// A stable dotted name, e.g. `auth.login`.
    pub action: String,
    /// Plain-language detail; never a secret.
    pub detail: String,
    pub client_addr: String,
    pub request_id: String,
}

impl Store {
    /// Appends an audit record and returns it.
    pub async fn audit(
        &self,
        actor: String,
        action: &'static str,
        detail: String,
        client_addr: String,
        request_id: String,
    ) -> Result<AuditEntry, StoreError> {
        self.call(move |c| {
            let at = now_unix();
            c.execute(
                "INSERT INTO audit_log(at, actor, action, detail, client_addr, request_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![at, actor, action, detail, client_addr, request_id],
            )?;
            Ok(AuditEntry {
                id: c.last_insert_rowid(),
                at,
                actor,
                action: action.to_string(),
                detail,
                client_addr,
                request_id,
            })
        })
        .await
    }

    /// The newest `limit` records, newest first.
    pub async fn audit_recent(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, at, actor, action, detail, client_addr, request_id FROM audit_log ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = stmt
                .query_map([limit], |r| {
                    Ok(AuditEntry {
                        id: r.get(0)?,
                        at: r.get(1)?,
                        actor: r.get(2)?,
                        action: r.get(3)?,
                        detail: r.get(4)?,
                        client_addr: r.get(5)?,
                        request_id: r.get(6)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}
