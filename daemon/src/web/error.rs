//! Errors as users see them: a plain message, a stable code, the HTTP status, and (added by the
//! `observe` middleware, which knows the request) the request id. Internals go to the log only.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
use crate::devices::DeviceError;
use crate::devices::checks::Outcome;
use crate::store::StoreError;

/// What the `observe` middleware needs to render an error in the right shape (JSON, toast or
/// page). Travels as a response extension.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub code: &'static str,
    pub message: String,
}

/// An error a handler returns.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl WebError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> WebError {
        WebError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    pub fn not_found() -> WebError {
        WebError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "There is nothing at this address. Check the link, or go back to the dashboard.",
        )
    }

    pub fn unauthenticated() -> WebError {
        WebError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Sign in first (or send a valid API token).",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// Logs the detail (with the request id, via the span) and shows a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> WebError {
        tracing::error!(error = %detail, "internal error");
        WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on the box. Try again; if it keeps happening, the log has the details under this reference.",
        )
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        res.extensions_mut().insert(ErrorInfo {
            code: self.code,
            message: self.message,
        });
        res
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> WebError {
        match e {
            StoreError::Closed => WebError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "The box is restarting. Try again in a moment.",
            ),
            other => WebError::internal(other),
        }
    }
}

/// Status and stable code for an authentication outcome the user can act on.
pub fn auth_status(e: &AuthError) -> (StatusCode, &'static str) {
    match e {
        AuthError::Throttled(_) => (StatusCode::TOO_MANY_REQUESTS, "throttled"),
        AuthError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        AuthError::BadCredentials => (StatusCode::UNAUTHORIZED, "bad_credentials"),
        AuthError::AlreadyClaimed => (StatusCode::CONFLICT, "already_claimed"),
        AuthError::SetupCodeRequired | AuthError::WrongSetupCode => {
            (StatusCode::FORBIDDEN, "setup_code")
        }
        AuthError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_input"),
        AuthError::Store(_) | AuthError::Vault(_) | AuthError::Hash(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    }
}

/// Seconds a client should wait before trying again after this outcome, for `Retry-After`.
fn auth_retry_after(e: &AuthError) -> Option<u64> {
    match e {
        AuthError::Throttled(d) => Some(crate::auth::wait_secs(*d)),
        // The hashing queue drains within seconds; a short pause spreads the retries out.
        AuthError::Busy => Some(BUSY_RETRY_AFTER_SECS),
        _ => None,
    }
}

/// `Retry-After` for a busy answer: about one queue's worth of waiting (see `hash_queue`).
const BUSY_RETRY_AFTER_SECS: u64 = 5;

/// Adds `Retry-After` to the response to `e` when waiting helps (throttled, busy).
pub fn with_retry_after(res: Response, e: &AuthError) -> Response {
    retry_after(res, auth_retry_after(e))
}

/// An authentication error as a response, with `Retry-After` when waiting helps.
pub fn auth_error_response(e: AuthError) -> Response {
    let secs = auth_retry_after(&e);
    retry_after(WebError::from(e).into_response(), secs)
}

fn retry_after(mut res: Response, secs: Option<u64>) -> Response {
    if let Some(v) = secs.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

impl From<AuthError> for WebError {
    fn from(e: AuthError) -> WebError {
        match e {
            AuthError::Store(s) => s.into(),
            AuthError::Vault(_) | AuthError::Hash(_) => WebError::internal(e),
            other => {
                let (status, code) = auth_status(&other);
                WebError::new(status, code, other.to_string())
            }
        }
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> WebError {
        WebError::internal(format!("template: {e}"))
    }
}

impl From<crate::deploy::DeployError> for WebError {
    fn from(e: crate::deploy::DeployError) -> WebError {
        use crate::deploy::DeployError as D;
        match e {
            // What the user must act on (change the request, wait, pick or fix a device, look at
            // the app's output): 422 with the engine's message. Listed one by one so a new
            // variant has to be placed here on purpose.
            D::BadSettings(_)
            | D::UpToDate { .. }
            | D::UpdateUnsupported { .. }
            | D::AppBusy(_)
            | D::StillUndoing { .. }
            | D::NoDevices
            | D::UnknownDevice
            | D::DeviceRemoved
            | D::CannotRun { .. }
            | D::NoDeviceFits { .. }
            | D::PortTaken { .. }
            | D::NoDeviceAddress { .. }
            | D::ComposeMissing(_)
            | D::ComposeGone(_)
            | D::ProjectClash { .. }
            | D::FolderTaken { .. }
            | D::FolderNotCreatable { .. }
            | D::FilesNotWritten { .. }
            | D::CopyFailed { .. }
            | D::RemoveFailed { .. }
            | D::PullFailed { .. }
            | D::RemovalNeedsDevice { .. }
            | D::StartFailed { .. }
            | D::HealthCheckFailed(_)
            | D::LifecycleFailed { .. }
            | D::NameTaken { .. }
            | D::ProxyPortTaken { .. }
            | D::ProxyNotReady { .. }
            | D::ProxyRefused { .. }
            | D::NotSecured { .. }
            | D::Certificate(_)
            | D::NotNamed(_)
            | D::BadName(_)
            | D::NameNotPlaced { .. }
            | D::NoNameAddress { .. }
            | D::SharedDbNotReady { .. }
            | D::SharedDbRefused { .. }
            | D::SharedDbInUse { .. }
            | D::CannotShare(_)
            | D::BackupRefused(_)
            | D::BackupFailed { .. }
            | D::CopyToSharedFailed { .. } => WebError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "cannot_deploy",
                e.to_string(),
            ),
            D::UnknownApp(_) | D::NotFound => WebError::not_found(),
            D::NotDeployed(_) => {
                WebError::new(StatusCode::NOT_FOUND, "not_deployed", e.to_string())
            }
            D::Device { .. } => {
                WebError::new(StatusCode::BAD_GATEWAY, "device_unreachable", e.to_string())
            }
            D::Store(s) => s.into(),
            D::Vault(v) => WebError::internal(v),
            e @ D::SecretNotPrepared(_) => WebError::internal(e),
        }
    }
}

impl From<crate::ota::OtaError> for WebError {
    fn from(e: crate::ota::OtaError) -> WebError {
        use crate::ota::OtaError as O;
        use crate::ota::channel::ChannelError as C;
        use crate::ota::rauc::RaucError as R;
        match e {
            O::Invalid(m) | O::Rauc(R::Refused(m)) => {
                WebError::new(StatusCode::UNPROCESSABLE_ENTITY, "update_refused", m)
            }
            O::Busy(m) => WebError::new(StatusCode::CONFLICT, "busy", m),
            O::Unavailable(_) => WebError::new(
                StatusCode::NOT_IMPLEMENTED,
                "updates_unavailable",
                e.to_string(),
            ),
            O::Rauc(R::Missing) => WebError::new(
                StatusCode::NOT_IMPLEMENTED,
                "updates_unavailable",
                R::Missing.to_string(),
            ),
            O::Rauc(r @ R::Failed(_)) => WebError::internal(r),
            // RAUC could not read the bundle from the channel: as the channel failing us.
            O::Rauc(R::Unreachable(m)) => {
                WebError::new(StatusCode::BAD_GATEWAY, "channel_failed", m)
            }
            O::Io(io) => WebError::internal(io),
            O::Store(s) => s.into(),
            O::Channel(C::BadUrl(_)) => WebError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_channel",
                e.to_string(),
            ),
            O::Channel(C::Io(io)) => WebError::internal(io),
            // The channel's server failed us: not our error, not the owner's request's.
            O::Channel(c) => {
                WebError::new(StatusCode::BAD_GATEWAY, "channel_failed", c.to_string())
            }
        }
    }
}

/// A device operation that failed, as the user sees it (a not-ready device: the failed checks
/// in words).
impl From<DeviceError> for WebError {
    fn from(e: DeviceError) -> WebError {
        match e {
            DeviceError::Invalid(m) => WebError::bad_request(m),
            DeviceError::Conflict(m) => WebError::new(StatusCode::CONFLICT, "conflict", m),
            DeviceError::NotFound => WebError::not_found(),
            // The owner reads one plain sentence (a toast does not know the display mode); the
            // technical words (address, protocol, system error) go to the log.
            DeviceError::Ssh(s) => {
                tracing::info!(error = %s, "a device action could not reach the device");
                WebError::new(StatusCode::BAD_GATEWAY, "device_unreachable", s.plain())
            }
            DeviceError::NotReady(r) => WebError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "device_not_ready",
                r.checks
                    .iter()
                    .filter(|c| c.outcome == Outcome::Fail)
                    .map(|c| c.plain.message.clone().unwrap_or_else(|| c.message.clone()))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            DeviceError::Store(s) => s.into(),
            DeviceError::Vault(v) => WebError::internal(v),
            DeviceError::Docker(d) => {
                tracing::info!(error = %d, "a device action could not use the app engine");
                WebError::new(
                    StatusCode::BAD_GATEWAY,
                    "docker_unavailable",
                    "The device's app engine did not answer. Check the device's page, then try \
                     again.",
                )
            }
        }
    }
}
