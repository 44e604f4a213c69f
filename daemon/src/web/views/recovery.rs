//! The box's own backup: the requests of the Backups page's "This box" card (the card itself
//! is `backups::box_card`), the printable recovery sheet, "Restore from a backup" on a new
//! box, and the dashboard's note after a restore.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::backups::{DestinationForm, FormView, LastView, advanced, box_card, clock, last_view};
use crate::backup::Target;
use crate::deploy::BoxRestore;
use crate::secrets::Secret;
use crate::store::now_unix;
use crate::web::AppState;
use crate::web::actions::backups::NewDestination;
use crate::web::actions::recovery as act;
use crate::web::context::Ctx;
use crate::web::error::WebError;
use crate::web::paths;

/// A refusal the owner can act on is shown in place; anything else goes the usual way.
fn shown(e: WebError) -> Result<String, WebError> {
    if e.status.is_client_error() {
        Ok(e.message)
    } else {
        Err(e)
    }
}

#[derive(Template)]
#[template(path = "partials/box_status.html")]
struct BoxStatus {
    last: Option<LastView>,
}

/// How the last box backup went, alone, for its live updates (a box backup ends with a
/// toast); the forms around it stay as the owner left them.
pub async fn box_part(State(state): State<AppState>) -> Result<Response, WebError> {
    let last = state
        .deployer
        .box_backup_status()
        .await
        .as_ref()
        .map(last_view);
    Ok(Html(BoxStatus { last }.render()?).into_response())
}

#[derive(Deserialize)]
pub struct PassphraseForm {
    #[serde(default)]
    passphrase: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    password: String,
}

pub async fn set_passphrase(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<PassphraseForm>,
) -> Result<Response, WebError> {
    let outcome = match act::set_passphrase(
        &state,
        &ctx,
        Secret::from_string(form.passphrase),
        Secret::from_string(form.confirm),
        Some(Secret::from_string(form.password)),
    )
    .await
    {
        Ok(()) => None,
        Err(e) => Some(Err(shown(e)?)),
    };
    Ok(Html(box_card(&state, advanced(&ctx)?, outcome).await?).into_response())
}

/// "Back up the box now": runs to its end (seconds: the box's state is small), then the card
/// again with how it went.
pub async fn back_up_now(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let outcome = match act::back_up_box(&state).await {
        Ok(b) if b.ok => Some(Ok(
            "The box's own settings and keys are backed up.".to_string()
        )),
        // Each destination's line says what went wrong.
        Ok(_) => None,
        Err(e) => Some(Err(shown(e)?)),
    };
    Ok(Html(box_card(&state, advanced(&ctx)?, outcome).await?).into_response())
}

#[derive(Template)]
#[template(path = "pages/recovery_sheet.html")]
struct SheetPage {
    version: &'static str,
    made: String,
    places: Vec<PlaceView>,
    passphrase_set: bool,
}

struct PlaceView {
    name: String,
    kind: &'static str,
    /// The fields as the restore form asks for them.
    fields: Vec<(&'static str, String)>,
    repository: String,
    /// How plain restic opens it: `restic -r <address> snapshots`, or for a REST server
    /// (whose login restic 0.14 reads only from the address) the address with the login in
    /// it, `PASSWORD` written in the password's place.
    plain: String,
}

/// `login`: a REST server's login name (unsealed by the caller; None for other kinds).
fn place_view(name: &str, target: &Target, login: Option<&str>) -> PlaceView {
    let fields = match target {
        Target::Sftp {
            host,
            port,
            user,
            path,
        } => {
            let mut f = vec![("Server address", host.clone())];
            if *port != 22 {
                f.push(("SSH port", port.to_string()));
            }
            f.push(("Login", user.clone()));
            f.push(("Folder", path.clone()));
            f
        }
        Target::S3 {
            endpoint,
            bucket,
            prefix,
        } => {
            let mut f = vec![("Address", endpoint.clone()), ("Bucket", bucket.clone())];
            if !prefix.is_empty() {
                f.push(("Folder in the bucket", prefix.clone()));
            }
            f
        }
        Target::Rest {
            url,
            append_only,
            certificate,
        } => {
            let mut f = vec![("Address", url.clone())];
            if let Some(user) = login.filter(|u| !u.is_empty()) {
                f.push(("Login", user.to_string()));
            }
            if let Some(fp) = crate::backup::rest::fingerprint(certificate) {
                f.push(("Certificate (SHA-256 fingerprint)", fp));
            }
            if *append_only {
                f.push(("Only lets backups be added", "yes".to_string()));
            }
            f
        }
        Target::Disk { path, disk } => vec![("Disk", disk.clone()), ("Folder", path.clone())],
    };
    let plain = match target {
        Target::Rest { url, .. } => {
            let user = login.unwrap_or_default();
            let address =
                crate::backup::rest_repository(url, &crate::backup::url_escape(user), "PASSWORD");
            format!("RESTIC_REPOSITORY='{address}' restic snapshots")
        }
        // A mount point may hold spaces: quoted for the shell the owner types it into.
        Target::Disk { path, .. } => {
            format!("restic -r '{}' snapshots", path.replace('\'', "'\\''"))
        }
        _ => format!("restic -r {} snapshots", target.repository()),
    };
    PlaceView {
        name: name.to_string(),
        kind: match target {
            Target::Sftp { .. } => "A NAS or another computer (SSH)",
            Target::S3 { .. } => "S3-compatible storage",
            Target::Rest { .. } => "A backup server (restic REST server)",
            Target::Disk { .. } => "A USB disk plugged into the box",
        },
        fields,
        repository: target.repository(),
        plain,
    }
}

/// The printable recovery sheet: where the backups are and what to do with a new box. It
/// never holds a secret: the passphrase is written on it by hand.
pub async fn recovery_sheet(State(state): State<AppState>) -> Result<Response, WebError> {
    let mut places = Vec::new();
    for d in state.store.backup_destinations().await? {
        let Ok(t) = serde_json::from_str::<Target>(&d.target) else {
            continue;
        };
        let login = match &t {
            Target::Rest { .. } => state.deployer.rest_login_name(&d).await,
            _ => None,
        };
        places.push(place_view(&d.name, &t, login.as_deref()));
    }
    Ok(Html(
        SheetPage {
            version: crate::VERSION,
            made: clock(now_unix()),
            places,
            passphrase_set: state.deployer.recovery_set().await,
        }
        .render()?,
    )
    .into_response())
}

#[derive(Template)]
#[template(path = "pages/restore.html")]
struct RestorePage {
    version: &'static str,
    form: FormView,
    advanced: bool,
    code_required: bool,
    /// After a restore: when the backup was made (the page then says the box is restarting).
    restored: Option<String>,
}

/// "Restore from a backup", on a box nobody has claimed yet.
pub async fn restore_page(State(state): State<AppState>) -> Result<Response, WebError> {
    let status = state.auth.claim_status().await?;
    if status.claimed {
        return Ok(Redirect::to(paths::LOGIN).into_response());
    }
    let form = FormView {
        restoring: true,
        ..FormView::default()
    }
    .with_disks(&state)
    .await;
    // Always: a restore brings keys whoever made the backup knows (`Auth::setup_gate`).
    render_restore(form, true, None)
}

fn render_restore(
    form: FormView,
    code_required: bool,
    restored: Option<String>,
) -> Result<Response, WebError> {
    Ok(Html(
        RestorePage {
            version: crate::VERSION,
            form,
            advanced: false,
            code_required,
            restored,
        }
        .render()?,
    )
    .into_response())
}

#[derive(Deserialize)]
pub struct RestoreForm {
    #[serde(flatten)]
    place: DestinationForm,
    #[serde(default)]
    passphrase: String,
    #[serde(default)]
    setup_code: Option<String>,
}

pub async fn restore_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<RestoreForm>,
) -> Result<Response, WebError> {
    let status = state.auth.claim_status().await?;
    if status.claimed {
        return Ok(Redirect::to(paths::LOGIN).into_response());
    }
    let mut again = form.place.refill().with_disks(&state).await;
    again.restoring = true;
    let passphrase = Secret::from_string(form.passphrase);
    let restored = match form.place.into_new() {
        Ok((_, new)) => {
            let req = match new {
                NewDestination::Sftp { target, password } => BoxRestore {
                    target,
                    password,
                    key_id: Secret::new(Vec::new()),
                    secret: Secret::new(Vec::new()),
                    passphrase,
                },
                NewDestination::S3 {
                    target,
                    key_id,
                    secret,
                } => BoxRestore {
                    target,
                    password: Secret::new(Vec::new()),
                    key_id,
                    secret,
                    passphrase,
                },
                // The login name goes in the key id's place (see `BoxRestore`).
                NewDestination::Rest {
                    target,
                    user,
                    password,
                } => BoxRestore {
                    target,
                    password,
                    key_id: user,
                    secret: Secret::new(Vec::new()),
                    passphrase,
                },
                NewDestination::Disk { folder } => BoxRestore {
                    target: Target::Disk {
                        path: folder,
                        disk: String::new(),
                    },
                    password: Secret::new(Vec::new()),
                    key_id: Secret::new(Vec::new()),
                    secret: Secret::new(Vec::new()),
                    passphrase,
                },
            };
            act::restore_box(&state, &ctx, form.setup_code.as_deref(), req).await
        }
        Err(e) => Err(e),
    };
    match restored {
        Ok(manifest) => render_restore(FormView::default(), false, Some(clock(manifest.made_at))),
        Err(e) => {
            again.error = Some(shown(e)?);
            render_restore(again, true, None)
        }
    }
}

#[derive(Template)]
#[template(path = "partials/restored_note.html")]
struct RestoredNote {
    made: String,
    version: String,
}

/// The dashboard's note after a restore (empty once dismissed).
pub async fn restored_html(state: &AppState) -> Result<String, WebError> {
    Ok(match state.deployer.restored_from().await {
        Some(r) => RestoredNote {
            made: clock(r.made_at),
            version: r.version,
        }
        .render()?,
        None => String::new(),
    })
}

pub async fn dismiss_restored(State(state): State<AppState>) -> Result<Response, WebError> {
    state.deployer.dismiss_restored().await?;
    Ok(Html(String::new()).into_response())
}
