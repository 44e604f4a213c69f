//! Who may do what: the first-run claim, admin passwords, browser sessions, CSRF tokens, login
//! throttling and API tokens. HTTP-free: `web/` maps these results to responses and cookies.

pub mod password;
pub mod throttle;
pub mod tokens;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::secrets::{Secret, Vault, VaultError};
use crate::store::{ApiTokenRow, SessionRow, Store, StoreError, UiMode, User, now_unix};
use throttle::Throttle;

/// Owner/purpose of the sealed setup code in the vault.
const SETUP_CODE_OWNER: &str = "system";
const SETUP_CODE_PURPOSE: &str = "setup-code";
/// Settings key holding when this box first started (Unix seconds).
const FIRST_STARTED_AT: &str = "first_started_at";
/// Rewrite a session's last-seen time at most this often.
const SESSION_TOUCH_SECS: i64 = 60;
/// Longest wait a client address can earn; long, since one address guessing is an attack.
const IP_WAIT_CAP: Duration = Duration::from_secs(15 * 60);
/// Longest wait an account can earn; short, so a stranger cannot lock the owner out for long.
const ACCOUNT_WAIT_CAP: Duration = Duration::from_secs(5 * 60);

/// Errors from authentication, each with a message a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("{0}")]
    Invalid(String),
    #[error("Wrong username or password.")]
    BadCredentials,
    #[error("Too many failed attempts. Try again in {} seconds.", wait_secs(*.0))]
    Throttled(Duration),
    #[error("This homelab already has an admin. Sign in instead.")]
    AlreadyClaimed,
    #[error(
        "The setup window has closed. Enter the setup code: it is shown on the box's screen, in \
         its log, and by running `homelabd setup-code` on it."
    )]
    SetupCodeRequired,
    #[error(
        "That setup code is not right. Check the code shown by `homelabd setup-code` and try again."
    )]
    WrongSetupCode,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Whole seconds to wait, rounded up so "0 seconds" is never shown.
pub fn wait_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Where the first-run claim stands.
#[derive(Debug, Clone, Copy)]
pub struct ClaimStatus {
    pub claimed: bool,
    /// The open window has passed: the setup code is needed.
    pub code_required: bool,
    /// Seconds left in the open window (0 once it closed).
    pub window_left_secs: i64,
}

/// A signed-in browser session, as handlers see it.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub user_id: i64,
    pub username: String,
    pub ui_mode: UiMode,
    /// The token every state-changing request of this session must carry.
    pub csrf_token: String,
    /// Identifies the session for logout without keeping the raw token around.
    pub token_hash: Vec<u8>,
}

/// A session just created; the token goes into the cookie and nowhere else.
pub struct NewSession {
    pub token: Secret,
    pub user: User,
}

/// Who a request comes from, for inputs that vary per request.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: IpAddr,
    pub user_agent: String,
}

/// The authentication service; cheap to share behind `Arc`.
pub struct Auth {
    store: Store,
    vault: Arc<Vault>,
    throttle: Throttle,
    claim_window: Duration,
    idle_timeout: Duration,
}

impl Auth {
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        claim_window: Duration,
        idle_timeout: Duration,
    ) -> Auth {
        Auth {
            store,
            vault,
            throttle: Throttle::default(),
            claim_window,
            idle_timeout,
        }
    }

    /// Called at every start: records the first start and, while unclaimed, makes sure a setup
    /// code exists. Returns the code while the box is unclaimed, for the start log.
    pub async fn init(&self) -> Result<Option<Secret>, AuthError> {
        self.store
            .setting_init(FIRST_STARTED_AT, now_unix().to_string())
            .await?;
        if self.store.has_users().await? {
            return Ok(None);
        }
        if let Some(code) = self.setup_code().await? {
            return Ok(Some(code));
        }
        let code = tokens::new_setup_code();
        let sealed = self
            .vault
            .seal(code.expose(), SETUP_CODE_OWNER, SETUP_CODE_PURPOSE);
        self.store
            .put_secret(SETUP_CODE_OWNER.into(), SETUP_CODE_PURPOSE, sealed)
            .await?;
        Ok(Some(code))
    }

    /// The current setup code, if the box is unclaimed.
    pub async fn setup_code(&self) -> Result<Option<Secret>, AuthError> {
        let Some(sealed) = self
            .store
            .secret(SETUP_CODE_OWNER.into(), SETUP_CODE_PURPOSE)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.vault.open(
            &sealed,
            SETUP_CODE_OWNER,
            SETUP_CODE_PURPOSE,
        )?))
    }

    pub async fn claim_status(&self) -> Result<ClaimStatus, AuthError> {
        let claimed = self.store.has_users().await?;
        let first: i64 = self
            .store
            .setting(FIRST_STARTED_AT)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let closes = first.saturating_add(self.claim_window.as_secs() as i64);
        let left = (closes - now_unix()).max(0);
        Ok(ClaimStatus {
            claimed,
            code_required: left == 0,
            window_left_secs: left,
        })
    }

    /// Creates the first admin and signs them in.
    pub async fn claim(
        &self,
        username: &str,
        password: Secret,
        confirm: Secret,
        setup_code: Option<&str>,
        client: &Client,
    ) -> Result<NewSession, AuthError> {
        let status = self.claim_status().await?;
        if status.claimed {
            return Err(AuthError::AlreadyClaimed);
        }
        let ip_key = format!("setup-ip:{}", client.addr);
        if let Some(wait) = self.throttle.wait_for(std::slice::from_ref(&ip_key)) {
            return Err(AuthError::Throttled(wait));
        }
        let typed = setup_code
            .map(tokens::normalise_setup_code)
            .unwrap_or_default();
        // Inside the open window no code is needed, but a code that is typed must be right:
        // a mistyped code is a mistake worth telling about (and the appliance's boot test uses
        // it to prove the console shows the daemon's code).
        if status.code_required || !typed.is_empty() {
            if typed.is_empty() {
                return Err(AuthError::SetupCodeRequired);
            }
            let expected = self.setup_code().await?.ok_or(AuthError::AlreadyClaimed)?;
            let expected = tokens::normalise_setup_code(expected.expose_str().unwrap_or_default());
            if !tokens::ct_eq(&typed, &expected) {
                self.throttle.fail(ip_key, IP_WAIT_CAP);
                return Err(AuthError::WrongSetupCode);
            }
        }
        let username = validate_username(username)?;
        let pw = password
            .expose_str()
            .ok_or_else(|| AuthError::Invalid("The password is not valid text.".into()))?;
        if !tokens::ct_eq(pw, confirm.expose_str().unwrap_or_default()) {
            return Err(AuthError::Invalid(
                "The two passwords do not match. Type the same password twice.".into(),
            ));
        }
        password::check_policy(pw, &username).map_err(AuthError::Invalid)?;
        let hash = hash_blocking(password).await?;
        let user = match self.store.claim(username, hash).await {
            Err(StoreError::Conflict(_)) => return Err(AuthError::AlreadyClaimed),
            other => other?,
        };
        self.throttle.succeed(&ip_key);
        self.start_session(user, client).await
    }

    /// Checks a username and password, with throttling, and starts a session.
    pub async fn login(
        &self,
        username: &str,
        password: Secret,
        client: &Client,
    ) -> Result<NewSession, AuthError> {
        let ip_key = format!("ip:{}", client.addr);
        let user_key = format!("user:{}", username.trim().to_lowercase());
        if let Some(wait) = self.throttle.wait_for(&[ip_key.clone(), user_key.clone()]) {
            return Err(AuthError::Throttled(wait));
        }
        let user = self.store.user_by_name(username.trim().to_string()).await?;
        // Verify against a dummy hash for unknown users so timing does not reveal which
        // usernames exist.
        let phc = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.to_string());
        let ok = tokio::task::spawn_blocking(move || password::verify(&password, &phc))
            .await
            .map_err(|e| AuthError::Hash(e.to_string()))?;
        match user {
            Some(user) if ok => {
                self.throttle.succeed(&ip_key);
                self.throttle.succeed(&user_key);
                self.start_session(user, client).await
            }
            _ => {
                self.throttle.fail(ip_key, IP_WAIT_CAP);
                self.throttle.fail(user_key, ACCOUNT_WAIT_CAP);
                Err(AuthError::BadCredentials)
            }
        }
    }

    async fn start_session(&self, user: User, client: &Client) -> Result<NewSession, AuthError> {
        let token = tokens::new_token("");
        let hash = tokens::hash_token(token.expose_str().unwrap_or_default());
        let ua: String = client.user_agent.chars().take(200).collect();
        self.store
            .create_session(hash, user.id, client.addr.to_string(), ua)
            .await?;
        Ok(NewSession { token, user })
    }

    /// Resolves a session cookie to its user, or `None` if unknown or expired.
    pub async fn session(&self, token: &str) -> Result<Option<SessionUser>, AuthError> {
        let hash = tokens::hash_token(token);
        let idle = self.idle_timeout.as_secs() as i64;
        let row: Option<SessionRow> = self
            .store
            .session(hash.clone(), idle, SESSION_TOUCH_SECS)
            .await?;
        Ok(row.map(|r| SessionUser {
            user_id: r.user_id,
            username: r.username,
            ui_mode: r.ui_mode,
            csrf_token: tokens::csrf_for(token),
            token_hash: hash,
        }))
    }

    pub async fn logout(&self, session: &SessionUser) -> Result<(), AuthError> {
        Ok(self
            .store
            .delete_session(session.token_hash.clone())
            .await?)
    }

    /// Ends every session of the user, this one included; returns how many ended.
    pub async fn logout_everywhere(&self, user_id: i64) -> Result<usize, AuthError> {
        Ok(self.store.delete_user_sessions(user_id).await?)
    }

    /// Creates an API token; the value is returned once and only its hash is kept.
    pub async fn create_api_token(
        &self,
        name: &str,
        user_id: i64,
    ) -> Result<(ApiTokenRow, Secret), AuthError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(AuthError::Invalid(
                "Give the token a name of 1 to 64 characters, e.g. the script that will use it."
                    .into(),
            ));
        }
        let token = tokens::new_token(tokens::API_TOKEN_PREFIX);
        let value = token.expose_str().unwrap_or_default();
        let prefix: String = value
            .chars()
            .take(tokens::API_TOKEN_PREFIX.len() + 4)
            .collect();
        let row = self
            .store
            .create_api_token(name.to_string(), tokens::hash_token(value), prefix, user_id)
            .await?;
        Ok((row, token))
    }

    /// Resolves a bearer token to (id, name).
    pub async fn api_token(&self, token: &str) -> Result<Option<(i64, String)>, AuthError> {
        if !token.starts_with(tokens::API_TOKEN_PREFIX) {
            return Ok(None);
        }
        Ok(self.store.use_api_token(tokens::hash_token(token)).await?)
    }

    /// Changes the admin password after checking the current one; ends all sessions.
    pub async fn change_password(
        &self,
        username: &str,
        current: Secret,
        new: Secret,
        confirm: Secret,
        client: &Client,
    ) -> Result<NewSession, AuthError> {
        let user = self
            .store
            .user_by_name(username.to_string())
            .await?
            .ok_or(AuthError::BadCredentials)?;
        let new_str = new
            .expose_str()
            .ok_or_else(|| AuthError::Invalid("The password is not valid text.".into()))?;
        if !tokens::ct_eq(new_str, confirm.expose_str().unwrap_or_default()) {
            return Err(AuthError::Invalid(
                "The two new passwords do not match.".into(),
            ));
        }
        password::check_policy(new_str, &user.username).map_err(AuthError::Invalid)?;
        let phc = user.password_hash.clone();
        let ok = tokio::task::spawn_blocking(move || password::verify(&current, &phc))
            .await
            .map_err(|e| AuthError::Hash(e.to_string()))?;
        if !ok {
            self.throttle.fail(
                format!("user:{}", user.username.to_lowercase()),
                ACCOUNT_WAIT_CAP,
            );
            return Err(AuthError::Invalid(
                "The current password is not right.".into(),
            ));
        }
        let hash = hash_blocking(new).await?;
        self.store.set_password(user.id, hash).await?;
        self.start_session(user, client).await
    }
}

async fn hash_blocking(password: Secret) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|e| AuthError::Hash(e.to_string()))?
        .map_err(AuthError::Hash)
}

/// A valid Argon2id hash of a random string nobody knows, verified for unknown usernames.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";

fn validate_username(name: &str) -> Result<String, AuthError> {
    let name = name.trim();
    let ok = (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !ok {
        return Err(AuthError::Invalid(
            "Use 1 to 32 letters, digits, dots, dashes or underscores for the username.".into(),
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_is_a_real_argon2id_hash() {
        // Unknown usernames are verified against it so they take as long as known ones; a hash
        // that failed to parse would answer instantly and reveal which usernames exist.
        assert!(argon2::password_hash::phc::PasswordHash::new(DUMMY_HASH).is_ok());
        let start = std::time::Instant::now();
        assert!(!password::verify(
            &Secret::from_string("anything".into()),
            DUMMY_HASH
        ));
        assert!(
            start.elapsed() > std::time::Duration::from_millis(1),
            "verification did real work"
        );
    }

    #[test]
    fn usernames_are_validated() {
        assert_eq!(validate_username("  admin ").unwrap(), "admin");
        assert!(validate_username("").is_err());
        assert!(validate_username("a b").is_err());
        assert!(validate_username("<script>").is_err());
        assert!(validate_username(&"a".repeat(33)).is_err());
    }
}
