//! The audit log: every state change, who made it, when, and from where.
//!
//! Bounded twice, so a flood (say failed sign-ins with megabyte usernames) cannot grow the
//! database without end: each field is cut at the store edge whatever the caller passed, and
//! only the newest [`AUDIT_KEEP`] records are kept.

use rusqlite::params;

use super::{Store, StoreError, now_unix};
use crate::limits::{self, truncate};

/// Records kept: months of an owner's changes. With every field at its limit that is about
/// 12 MB of plain text (the most that megabyte usernames now add to the database), four times
/// that in the widest characters; typical records are a hundred bytes.
pub const AUDIT_KEEP: i64 = 10_000;
/// Older records are deleted every this many inserts, not on each one; so at most
/// `AUDIT_KEEP + AUDIT_PRUNE_EVERY` records exist. The delete is a range on the primary key,
/// so it costs the rows it removes, not a scan of the table.
const AUDIT_PRUNE_EVERY: i64 = 500;
/// Client address ("2001:db8::1" and the like) and request id: short by construction; cut anyway.
const AUDIT_ADDR: usize = 64;
const AUDIT_REQUEST_ID: usize = 64;

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
        let actor = truncate(&actor, limits::AUDIT_ACTOR).into_owned();
        let detail = truncate(&detail, limits::AUDIT_DETAIL).into_owned();
        let client_addr = truncate(&client_addr, AUDIT_ADDR).into_owned();
        let request_id = truncate(&request_id, AUDIT_REQUEST_ID).into_owned();
        self.call(move |c| {
            let at = now_unix();
            c.execute(
                "INSERT INTO audit_log(at, actor, action, detail, client_addr, request_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![at, actor, action, detail, client_addr, request_id],
            )?;
            let id = c.last_insert_rowid();
            // A change worth a revision is always audited, so this is where one is taken
            // (after the change: an action audits what it did). Sign-ins and the like change
            // nothing desired and can come in floods: they skip the read. A revision that
            // cannot be taken never undoes the record of what was done.
            if !super::desired::never_a_revision(action)
                && let Err(e) = super::desired::note_revision(c, &actor, &detail)
            {
                tracing::warn!("revision not taken: {e}");
            }
            if id % AUDIT_PRUNE_EVERY == 0 {
                c.execute(
                    "DELETE FROM audit_log WHERE id <= ?1",
                    [id - AUDIT_KEEP],
                )?;
            }
            Ok(AuditEntry {
                id,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn count(store: &Store) -> impl std::future::Future<Output = Result<i64, StoreError>> {
        store.call(|c| Ok(c.query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))?))
    }

    #[tokio::test]
    async fn the_audit_log_keeps_the_newest_records_and_cuts_long_fields()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("homelab.db"))?;
        // A flood, written in one transaction (one commit per record would take minutes).
        let flood = AUDIT_KEEP + 2 * AUDIT_PRUNE_EVERY - 1;
        store
            .call(move |c| {
                let tx = c.transaction()?;
                for i in 0..flood {
                    tx.execute(
                        "INSERT INTO audit_log(at, actor, action, detail, client_addr, request_id)
                         VALUES (?1, 'x', 'auth.login_failed', '', '', '')",
                        [i],
                    )?;
                }
                tx.commit()?;
                Ok(())
            })
            .await?;
        assert_eq!(count(&store).await?, flood);
        let huge = "u".repeat(2_000_000);
        let entry = store
            .audit(
                huge.clone(),
                "auth.login_failed",
                huge.clone(),
                huge.clone(),
                huge,
            )
            .await?;
        assert_eq!(entry.id, AUDIT_KEEP + 2 * AUDIT_PRUNE_EVERY);
        assert_eq!(count(&store).await?, AUDIT_KEEP);
        let newest = store.audit_recent(1).await?;
        assert_eq!(newest[0].id, entry.id);
        assert_eq!(newest[0].detail.chars().count(), limits::AUDIT_DETAIL);
        assert_eq!(newest[0].actor.chars().count(), limits::AUDIT_ACTOR);
        assert!(newest[0].client_addr.chars().count() <= AUDIT_ADDR);
        assert!(newest[0].request_id.chars().count() <= AUDIT_REQUEST_ID);
        Ok(())
    }
}
