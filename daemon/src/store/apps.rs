//! Deployed apps, deployments, their journal of steps (each with its undo) and the actions log
//! behind "What I did".

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError, now_unix};
use crate::states::{DeploymentState, RunState};

/// An app that is (or was last seen) deployed on a device.
#[derive(Debug, Clone)]
pub struct AppRow {
    pub slug: String,
    pub name: String,
    pub device_id: i64,
    pub version: String,
    pub state: RunState,
    pub message: String,
    pub settings: String,
    pub url: String,
    pub app_dir: String,
    pub compose: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One deployment (a deploy, an update or a removal) and where it got to.
#[derive(Debug, Clone)]
pub struct DeploymentRow {
    pub id: i64,
    pub slug: String,
    pub kind: String,
    pub device_id: i64,
    pub device_name: String,
    pub state: DeploymentState,
    pub progress: i64,
    pub message: String,
    pub error: Option<String>,
    pub placement: String,
    pub request: String,
    pub compose: String,
    pub env_keys: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// When it entered its current state (Unix seconds).
    pub state_at: i64,
}

/// A journal entry.
#[derive(Debug, Clone)]
pub struct StepRow {
    pub seq: i64,
    pub step: String,
    pub undo: String,
    pub status: String,
}

/// A line of "What I did".
#[derive(Debug, Clone)]
pub struct ActionRow {
    pub seq: i64,
    pub at: i64,
    pub what: String,
    pub outcome: String,
    pub millis: i64,
    pub output: String,
}

const APP_COLUMNS: &str = "slug, name, device_id, version, state, message, settings, url, app_dir, compose, created_at, updated_at";
const DEPLOYMENT_COLUMNS: &str = "id, slug, kind, device_id, device_name, state, progress, message, error, placement, request, compose, env_keys, started_at, finished_at, state_at";

fn app_row(r: &Row<'_>) -> rusqlite::Result<AppRow> {
    Ok(AppRow {
        slug: r.get(0)?,
        name: r.get(1)?,
        device_id: r.get(2)?,
        version: r.get(3)?,
        state: r.get(4)?,
        message: r.get(5)?,
        settings: r.get(6)?,
        url: r.get(7)?,
        app_dir: r.get(8)?,
        compose: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

fn deployment_row(r: &Row<'_>) -> rusqlite::Result<DeploymentRow> {
    Ok(DeploymentRow {
        id: r.get(0)?,
        slug: r.get(1)?,
        kind: r.get(2)?,
        device_id: r.get(3)?,
        device_name: r.get(4)?,
        state: r.get(5)?,
        progress: r.get(6)?,
        message: r.get(7)?,
        error: r.get(8)?,
        placement: r.get(9)?,
        request: r.get(10)?,
        compose: r.get(11)?,
        env_keys: r.get(12)?,
        started_at: r.get(13)?,
        finished_at: r.get(14)?,
        state_at: r.get(15)?,
    })
}

// The states are stored as their words (the same words since the first version), so a
// database from any version reads back; a word this version does not know is an error.
impl ToSql for DeploymentState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for DeploymentState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let word = value.as_str()?;
        DeploymentState::parse(word)
            .ok_or_else(|| FromSqlError::Other(format!("unknown deployment state {word:?}").into()))
    }
}

impl ToSql for RunState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for RunState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let word = value.as_str()?;
        RunState::parse(word)
            .ok_or_else(|| FromSqlError::Other(format!("unknown app state {word:?}").into()))
    }
}

/// `'running', 'rolled_back', 'done'`: the finished states as an SQL list.
fn finished_sql() -> String {
    DeploymentState::FINISHED
        .map(|s| format!("'{}'", s.as_str()))
        .join(", ")
}

impl Store {
    pub async fn apps(&self) -> Result<Vec<AppRow>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!("SELECT {APP_COLUMNS} FROM apps ORDER BY name"))?;
            let rows = st.query_map([], app_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn app(&self, slug: String) -> Result<Option<AppRow>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                &format!("SELECT {APP_COLUMNS} FROM apps WHERE slug = ?1"),
                [slug],
                app_row,
            )
            .optional()?)
        })
        .await
    }

    /// Inserts or replaces the record of a deployed app.
    pub async fn put_app(&self, a: AppRow) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                &format!(
                    "INSERT OR REPLACE INTO apps({APP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                ),
                params![
                    a.slug, a.name, a.device_id, a.version, a.state, a.message, a.settings, a.url,
                    a.app_dir, a.compose, a.created_at, a.updated_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Sets an app's link (its name once that is in place).
    pub async fn set_app_url(&self, slug: String, url: String) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "UPDATE apps SET url = ?2, updated_at = ?3 WHERE slug = ?1",
                params![slug, url, now_unix()],
            )?;
            Ok(())
        })
        .await
    }

    /// Records an app on another device, at its address and with its settings there (a move,
    /// or its undo).
    pub async fn move_app(
        &self,
        slug: String,
        device_id: i64,
        url: String,
        settings: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "UPDATE apps SET device_id = ?2, url = ?3, settings = ?4, updated_at = ?5
                 WHERE slug = ?1",
                params![slug, device_id, url, settings, now_unix()],
            )?;
            Ok(())
        })
        .await
    }

    /// Sets an app's state and message; returns whether it changed.
    pub async fn set_app_state(
        &self,
        slug: String,
        state: RunState,
        message: String,
    ) -> Result<bool, StoreError> {
        self.call(move |c| {
            let n = c.execute(
                "UPDATE apps SET state = ?2, message = ?3, updated_at = ?4
                 WHERE slug = ?1 AND (state != ?2 OR message != ?3)",
                params![slug, state, message, now_unix()],
            )?;
            Ok(n > 0)
        })
        .await
    }

    pub async fn delete_app(&self, slug: String) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute("DELETE FROM apps WHERE slug = ?1", [slug])?;
            Ok(())
        })
        .await
    }

    /// Names of the apps deployed on a device (removing the device must wait for them).
    pub async fn apps_on_device(&self, device_id: i64) -> Result<Vec<String>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare("SELECT name FROM apps WHERE device_id = ?1 ORDER BY name")?;
            let rows = st.query_map([device_id], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .await
    }

    /// Starts a deployment record; returns its id.
    pub async fn new_deployment(&self, d: DeploymentRow) -> Result<i64, StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO deployments(slug, kind, device_id, device_name, state, progress, message,
                     placement, request, started_at, state_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9, ?9)",
                params![
                    d.slug,
                    d.kind,
                    d.device_id,
                    d.device_name,
                    d.state,
                    d.message,
                    d.placement,
                    d.request,
                    now_unix()
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    pub async fn deployment(&self, id: i64) -> Result<Option<DeploymentRow>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                &format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id = ?1"),
                [id],
                deployment_row,
            )
            .optional()?)
        })
        .await
    }

    /// Most recent first; `slug` narrows to one app.
    pub async fn deployments(
        &self,
        slug: Option<String>,
        limit: i64,
    ) -> Result<Vec<DeploymentRow>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT {DEPLOYMENT_COLUMNS} FROM deployments
                 WHERE ?1 IS NULL OR slug = ?1 ORDER BY id DESC LIMIT ?2"
            ))?;
            let rows = st.query_map(params![slug, limit], deployment_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Deployments that have not reached a finished state (in flight, failed, or rolling back).
    pub async fn unfinished_deployments(&self) -> Result<Vec<DeploymentRow>, StoreError> {
        self.call(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {DEPLOYMENT_COLUMNS} FROM deployments
                 WHERE state NOT IN ({}) ORDER BY id",
                finished_sql()
            ))?;
            let rows = st.query_map([], deployment_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Moves a deployment to a state with a message and progress (0..100).
    pub async fn set_deployment_state(
        &self,
        id: i64,
        state: DeploymentState,
        progress: i64,
        message: String,
    ) -> Result<(), StoreError> {
        let finished = state.is_finished();
        let message = crate::limits::truncate(&message, crate::limits::DEVICE_OUTPUT).into_owned();
        self.call(move |c| {
            c.execute(
                // `state` on the right is the old value: the clock restarts only on a change.
                "UPDATE deployments SET state = ?2, progress = ?3, message = ?4,
                     finished_at = CASE WHEN ?5 THEN ?6 ELSE NULL END,
                     state_at = CASE WHEN state = ?2 THEN state_at ELSE ?6 END
                 WHERE id = ?1",
                params![id, state, progress, message, finished, now_unix()],
            )?;
            Ok(())
        })
        .await
    }

    /// Records why a deployment failed. The text often carries a device's output (up to
    /// megabytes from a broken app), so it is cut here: the page needs the start of it, and
    /// the full output stays on the device.
    pub async fn set_deployment_error(&self, id: i64, error: String) -> Result<(), StoreError> {
        let error = crate::limits::truncate(&error, crate::limits::DEVICE_OUTPUT).into_owned();
        self.call(move |c| {
            c.execute(
                "UPDATE deployments SET error = ?2 WHERE id = ?1",
                params![id, error],
            )?;
            Ok(())
        })
        .await
    }

    /// Records the Compose file and the env keys (never values) for "What I did".
    pub async fn set_deployment_files(
        &self,
        id: i64,
        compose: String,
        env_keys: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "UPDATE deployments SET compose = ?2, env_keys = ?3 WHERE id = ?1",
                params![id, compose, env_keys],
            )?;
            Ok(())
        })
        .await
    }

    /// Journals a step with its undo before the step acts; returns its sequence number.
    pub async fn begin_step(&self, id: i64, step: String, undo: String) -> Result<i64, StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            let seq: i64 = tx.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM deployment_steps WHERE deployment_id = ?1",
                [id],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO deployment_steps(deployment_id, seq, step, undo, status)
                 VALUES (?1, ?2, ?3, ?4, 'started')",
                params![id, seq, step, undo],
            )?;
            tx.commit()?;
            Ok(seq)
        })
        .await
    }

    /// Replaces a journalled step's undo once the step knows exactly what it made (a record's
    /// id from the provider, the name actually used).
    pub async fn set_step_undo(&self, id: i64, seq: i64, undo: String) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "UPDATE deployment_steps SET undo = ?3 WHERE deployment_id = ?1 AND seq = ?2",
                params![id, seq, undo],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn set_step_status(
        &self,
        id: i64,
        seq: i64,
        status: &'static str,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "UPDATE deployment_steps SET status = ?3 WHERE deployment_id = ?1 AND seq = ?2",
                params![id, seq, status],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn steps(&self, id: i64) -> Result<Vec<StepRow>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare(
                "SELECT seq, step, undo, status FROM deployment_steps
                 WHERE deployment_id = ?1 ORDER BY seq",
            )?;
            let rows = st.query_map([id], |r| {
                Ok(StepRow {
                    seq: r.get(0)?,
                    step: r.get(1)?,
                    undo: r.get(2)?,
                    status: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Appends a line to "What I did".
    pub async fn add_action(
        &self,
        id: i64,
        what: String,
        outcome: String,
        millis: i64,
        output: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO deployment_actions(deployment_id, seq, at, what, outcome, millis, output)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM deployment_actions WHERE deployment_id = ?1),
                         ?2, ?3, ?4, ?5, ?6)",
                params![id, now_unix(), what, outcome, millis, output],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn actions(&self, id: i64) -> Result<Vec<ActionRow>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare(
                "SELECT seq, at, what, outcome, millis, output FROM deployment_actions
                 WHERE deployment_id = ?1 ORDER BY seq",
            )?;
            let rows = st.query_map([id], |r| {
                Ok(ActionRow {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    what: r.get(2)?,
                    outcome: r.get(3)?,
                    millis: r.get(4)?,
                    output: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_states_in_sql_are_the_stored_words() {
        assert_eq!(finished_sql(), "'running', 'rolled_back', 'done'");
    }
}
