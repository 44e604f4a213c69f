//! The desired state's history and its configuration file: exporting it, importing one onto a
//! fresh box (a preview of every change first, then all of it in one transaction and a
//! restart), and "Revert to here", which makes each change again through the action that
//! made it (so each is checked, audited and becomes a revision of its own, and a revert is
//! undone by reverting to the revision before it).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::desired::export::{self, ExportError, Opened};
use crate::desired::{self, Change, Step};
use crate::ota::auto::ChannelSettings;
use crate::secrets::Secret;
use crate::store::{Desired, Import, Revision, SCHEMA_VERSION, now_unix};
use crate::web::AppState;
use crate::web::actions::backups::PolicyChoice;
use crate::web::context::Ctx;
use crate::web::error::WebError;

/// Reading, sealing or opening a file costs memory (Argon2's 64 MiB, up to 256 MiB for a file
/// that asks for more; a file's JSON): one at a time, so a burst of requests cannot take the
/// box's memory. A second one meanwhile is told to try again rather than queued.
static ONE_FILE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Runs `work` on a blocking thread holding the one permit for file work: the permit goes
/// with the work, so a client that hangs up cannot free it while the work still runs.
async fn file_work<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WebError> {
    let permit = ONE_FILE.try_acquire().map_err(|_| {
        WebError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Homelab is reading or writing another configuration file. Try again in a few seconds.",
        )
    })?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(WebError::internal)
}

/// How long an uploaded file waits for its passphrase and the owner's yes.
const PENDING_FOR: Duration = Duration::from_secs(15 * 60);

/// The one configuration file waiting to be imported: one at a time (a new upload replaces
/// it), dropped after `PENDING_FOR`, so uploads cannot pile up in memory.
#[derive(Default)]
pub struct PendingImport(Mutex<Option<Pending>>);

struct Pending {
    at: Instant,
    bytes: Vec<u8>,
    /// Set once the passphrase opened it.
    opened: Option<Opened>,
}

impl PendingImport {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets a file left too long.
    fn expire(&self) {
        let mut slot = self.lock();
        if slot.as_ref().is_some_and(|p| p.at.elapsed() > PENDING_FOR) {
            *slot = None;
        }
    }

    pub fn waiting(&self) -> bool {
        self.expire();
        self.lock().is_some()
    }
}

fn bad(words: impl Into<String>) -> WebError {
    WebError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "config_refused",
        words,
    )
}

fn export_error(e: ExportError) -> WebError {
    bad(e.to_string())
}

/// The file's passphrase: as long as the box's recovery passphrase must be, on one line.
fn passphrase(typed: Secret) -> Result<Secret, WebError> {
    let text = typed.expose_str().unwrap_or_default().trim();
    let min = crate::deploy::MIN_PASSPHRASE;
    if text.chars().count() < min {
        return Err(bad(format!(
            "Use at least {min} characters for the file's passphrase: a few words together work well."
        )));
    }
    if text.len() > 1024 || text.chars().any(char::is_control) {
        return Err(bad("Use at most 1024 characters, on one line."));
    }
    Ok(Secret::from_string(text.to_string()))
}

/// The configuration file with every secret sealed under `passphrase`; audited.
///
/// The file carries every secret of the homelab, so a signed-in user types their password
/// again (a session cookie alone, stolen or left open, cannot take them). An API token is a
/// credential the owner made for scripts and stands on its own.
pub async fn export(
    state: &AppState,
    who: &Ctx,
    password: Option<Secret>,
    typed: Secret,
    confirm: Secret,
) -> Result<Vec<u8>, WebError> {
    if typed.expose() != confirm.expose() {
        return Err(bad("The two passphrases differ: type the same one twice."));
    }
    let pass = passphrase(typed)?;
    super::confirm_owner(
        state,
        who,
        password,
        "export: the file holds every secret of your homelab",
    )
    .await?;
    let desired = state.store.desired(true).await?;
    let mut secrets = Vec::new();
    for (owner, purpose, sealed) in state.store.portable_secrets().await? {
        // What the state no longer holds (a secret left by something removed) stays here.
        if !crate::store::owned_by(&desired, &owner) {
            continue;
        }
        let value = state
            .vault
            .open(&sealed, &owner, &purpose)
            .map_err(WebError::internal)?;
        secrets.push((owner, purpose, value));
    }
    let count = secrets.len();
    let bytes =
        file_work(move || export::write(desired, secrets, &pass, SCHEMA_VERSION, now_unix()))
            .await?
            .map_err(export_error)?;
    who.audit(
        state,
        "config.export",
        format!("Exported the configuration ({count} secrets sealed with a passphrase)"),
    )
    .await?;
    Ok(bytes)
}

/// Keeps an uploaded file for its passphrase (replacing one uploaded before).
pub async fn upload(state: &AppState, bytes: Vec<u8>) -> Result<(), WebError> {
    // The file's own refusals come now, before its passphrase is asked for.
    let bytes = file_work(move || export::check(&bytes, SCHEMA_VERSION).map(|_| bytes))
        .await?
        .map_err(export_error)?;
    *state.pending_import.lock() = Some(Pending {
        at: Instant::now(),
        bytes,
        opened: None,
    });
    Ok(())
}

/// What importing a file would do to this box.
pub struct Preview {
    pub exported_at: i64,
    pub homelab: String,
    pub changes: Vec<Change>,
    /// Why it cannot be imported here (the changes are still shown).
    pub refused: Option<String>,
}

/// Opens the uploaded file with its passphrase and says what an import would change; nothing
/// changes yet.
pub async fn preview(state: &AppState, typed: Secret) -> Result<Preview, WebError> {
    state.pending_import.expire();
    let (uploaded, bytes) = state
        .pending_import
        .lock()
        .as_ref()
        .map(|p| (p.at, p.bytes.clone()))
        .ok_or_else(|| {
            bad("Choose the configuration file first (an upload is kept 15 minutes).")
        })?;
    let typed = Secret::from_string(typed.expose_str().unwrap_or_default().trim().to_string());
    let opened = file_work(move || export::read(&bytes, &typed, SCHEMA_VERSION))
        .await?
        .map_err(export_error)?;
    let preview = preview_of(state, &opened).await?;
    // Kept only for the upload it opened: if another file came meanwhile, "Import it" has
    // nothing to import until that one is opened (it never imports a file not shown).
    match state.pending_import.lock().as_mut() {
        Some(p) if p.at == uploaded => p.opened = Some(opened),
        _ => {
            return Err(bad(
                "Another file was chosen meanwhile: type the passphrase for that one.",
            ));
        }
    }
    Ok(preview)
}

async fn preview_of(state: &AppState, opened: &Opened) -> Result<Preview, WebError> {
    let now = state.store.desired(false).await?;
    // Compared as revisions are: what the box only observed is not a change.
    let mut theirs = opened.state.clone();
    for table in crate::store::TABLES {
        if let Some(rows) = theirs.tables.get_mut(table.name) {
            for row in rows {
                row.retain(|col, _| !table.observed.contains(&col.as_str()));
            }
        }
    }
    Ok(Preview {
        exported_at: opened.exported_at,
        homelab: opened.homelab.clone(),
        changes: desired::changes(&now, &theirs),
        refused: state.store.import_refused().await?,
    })
}

/// Imports the file the passphrase opened: all of it in one transaction, then the daemon
/// starts again so every part of it (devices, names, schedules) runs from the new state.
/// Returns what was imported, in words.
pub async fn apply(state: &AppState, who: &Ctx) -> Result<String, WebError> {
    state.pending_import.expire();
    let opened = state
        .pending_import
        .lock()
        .take()
        .and_then(|p| p.opened)
        .ok_or_else(|| {
            bad("Choose the configuration file and type its passphrase first (an upload is kept 15 minutes).")
        })?;
    let count = |t: &str| opened.state.rows(t).len();
    let words = format!(
        "Imported the configuration exported {} by Homelab {}: {} devices, {} apps, {} backup destinations",
        crate::units::format_time(opened.exported_at),
        opened.homelab,
        count("devices"),
        count("apps"),
        count("backup_destinations")
    );
    let secrets = opened
        .secrets
        .iter()
        .map(|(owner, purpose, value)| {
            (
                owner.clone(),
                purpose.clone(),
                state.vault.seal(value.expose(), owner, purpose),
            )
        })
        .collect();
    let import = Import {
        state: opened.state,
        secrets,
    };
    if let Err(why) = state.store.import_desired(import).await? {
        return Err(bad(why));
    }
    // The state is imported: the daemon starts again on it whatever happens next. The answer
    // goes out first.
    let restart = state.restart.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        restart.notify_one();
    });
    who.audit(state, "config.import", words.clone()).await?;
    Ok(words)
}

/// The newest revisions first.
pub async fn revisions(state: &AppState, limit: i64) -> Result<Vec<Revision>, WebError> {
    Ok(state.store.revisions(limit).await?)
}

/// A revision, what it changed from the one before, and what reverting to it would do now.
pub struct RevisionView {
    pub revision: Revision,
    pub changed: Vec<Change>,
    pub revert: Vec<Change>,
}

pub async fn revision(state: &AppState, id: i64) -> Result<RevisionView, WebError> {
    let (revision, then, before) = state
        .store
        .revision_states(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    let now = state.store.desired(false).await?;
    Ok(RevisionView {
        revision,
        changed: before
            .map(|b| desired::changes(&b, &then))
            .unwrap_or_default(),
        revert: desired::changes(&now, &then),
    })
}

/// What a revert did: each change made, left for the owner, or refused (with why).
#[derive(Default)]
pub struct Reverted {
    pub made: Vec<String>,
    pub by_hand: Vec<(String, String)>,
    pub failed: Vec<(String, String)>,
}

/// Takes the box back to a revision: every change an action can make is made through it.
pub async fn revert(state: &AppState, who: &Ctx, id: i64) -> Result<Reverted, WebError> {
    let (revision, then, _) = state
        .store
        .revision_states(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    let now: Desired = state.store.desired(false).await?;
    let mut out = Reverted::default();
    for change in desired::changes(&now, &then) {
        if let Step::ByHand(how) = &change.step {
            out.by_hand.push((change.words, how.clone()));
            continue;
        }
        match make(state, who, &change.step).await {
            Ok(()) => out.made.push(change.words),
            Err(e) => out.failed.push((change.words, e.message)),
        }
    }
    who.audit(
        state,
        "config.revert",
        format!(
            "Reverted to the state of {} ({}): {} changes made, {} left to do by hand{}",
            crate::units::format_time(revision.at),
            revision.what,
            out.made.len(),
            out.by_hand.len(),
            if out.failed.is_empty() {
                String::new()
            } else {
                format!(", {} refused", out.failed.len())
            }
        ),
    )
    .await?;
    Ok(out)
}

/// One step of a revert, through the action the owner would use.
async fn make(state: &AppState, who: &Ctx, step: &Step) -> Result<(), WebError> {
    match step {
        Step::Setting { key, value } => match key.as_str() {
            "update.channel" => {
                let settings: ChannelSettings = value
                    .as_deref()
                    .and_then(|v| serde_json::from_str(v).ok())
                    .unwrap_or_default();
                super::updates::set_channel(state, who, settings).await?;
            }
            "host_names" => {
                super::settings::save_host_names(state, who, value.as_deref().unwrap_or(""))
                    .await?;
            }
            "names.suffix" => {
                let suffix = value.as_deref().unwrap_or(crate::tls::ca::DEFAULT_SUFFIX);
                super::network::set_suffix(state, who, suffix).await?;
            }
            other => return Err(bad(format!("“{other}” is changed by hand."))),
        },
        Step::Policy { slug, policy } => {
            let slug = (!slug.is_empty()).then_some(slug.as_str());
            let choice = match policy {
                Some(p) => PolicyChoice::Own(p.clone()),
                None => PolicyChoice::FollowDefault,
            };
            super::backups::set_policy(state, who, slug, choice).await?;
        }
        Step::Device {
            id,
            name,
            host,
            port,
        } => super::devices::edit(state, who, *id, name, host, *port).await?,
        Step::AppName { slug, label } => {
            super::apps::rename(state, who, slug, label).await?;
        }
        Step::ByHand(how) => return Err(bad(how.clone())),
    }
    Ok(())
}
