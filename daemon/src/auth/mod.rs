//! Who may do what: the first-run claim, admin passwords, browser sessions, CSRF tokens, login
//! throttling, known browsers and API tokens. HTTP-free: `web/` maps these results to
//! responses and cookies.

pub mod hash_queue;
pub mod password;
pub mod throttle;
pub mod tokens;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::secrets::{Secret, Vault, VaultError};
use crate::store::{ApiTokenRow, SessionRow, Store, StoreError, UiMode, User, now_unix};
use hash_queue::HashQueue;
use throttle::{Key, Throttle};

/// Owner/purpose of the sealed setup code in the vault.
const SETUP_CODE_OWNER: &str = "system";
const SETUP_CODE_PURPOSE: &str = "setup-code";
/// Settings key holding when this box first started (Unix seconds).
const FIRST_STARTED_AT: &str = "first_started_at";
/// Rewrite a session's last-seen time at most this often.
const SESSION_TOUCH_SECS: i64 = 60;
/// Longest wait a client address can earn; long, since one address guessing is an attack.
const IP_WAIT_CAP: Duration = Duration::from_secs(15 * 60);
/// Longest wait an account can earn; short, so a stranger cannot lock the owner out for long
/// (and the owner's known browsers are not subject to it at all).
const ACCOUNT_WAIT_CAP: Duration = Duration::from_secs(5 * 60);
/// Longest wait a known browser can earn by its own failures: as long as an address's, since
/// failures from a browser that once signed in suggest a stolen laptop.
const BROWSER_WAIT_CAP: Duration = IP_WAIT_CAP;
/// How long a browser stays known after its last successful sign-in (the cookie's Max-Age,
/// renewed on every sign-in). A year: Chrome caps cookies at 400 days anyway.
pub const BROWSER_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// Known browsers kept per account, most recently used first: a household's phones and
/// laptops fit easily; clearing cookies over and over cannot grow the table.
const BROWSERS_KEPT: i64 = 20;
/// Usernames typed at sign-in longer than this are refused before they are used as a throttle
/// key, logged or audited. Valid usernames have at most 32 characters, so nothing is lost.
pub const MAX_USERNAME_INPUT: usize = 64;

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
    #[error("Homelab is busy checking other sign-ins; try again in a moment.")]
    Busy,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Which network a client's failures count against: its IPv4 address, or its IPv6 /64 (one
/// machine may pick any address in its /64, so single IPv6 addresses would not slow it down).
fn throttled_network(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
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
    /// The known-browser value to (re)set in this browser, so its next sign-in is recognised.
    pub browser: Secret,
}

/// Who a request comes from, for inputs that vary per request.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: IpAddr,
    pub user_agent: String,
    /// The known-browser cookie the request carried, if any (unverified).
    pub browser: Option<String>,
}

/// A username as typed, cut to a length that is safe to log, audit and show again.
pub fn bounded_username(typed: &str) -> String {
    let mut chars = typed.chars();
    let mut out: String = chars.by_ref().take(MAX_USERNAME_INPUT).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// Known browsers waiting for their hashing lane: a household's few browsers at once.
const KNOWN_LANE_WAITERS: usize = 8;
/// How long a known browser waits for its lane (one hash takes well under a second).
const KNOWN_LANE_WAIT: Duration = Duration::from_secs(10);

/// The authentication service; cheap to share behind `Arc`.
pub struct Auth {
    store: Store,
    vault: Arc<Vault>,
    throttle: Throttle,
    /// Every Argon2 hash and verification goes through it (memory is the scarce resource).
    hashes: HashQueue,
    /// A lane of its own for browsers that proved themselves (the known-browser cookie): a
    /// flood of strangers' guesses fills `hashes`, and must not answer the owner "busy". One
    /// hash at a time, a short queue: it costs at most one more hash's memory.
    known_hashes: HashQueue,
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
            hashes: HashQueue::default(),
            known_hashes: HashQueue::new(1, KNOWN_LANE_WAITERS, KNOWN_LANE_WAIT),
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
        self.setup_gate(setup_code, client, false).await?;
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
        let hash = self.hash(password, false).await?;
        let user = match self.store.claim(username, hash).await {
            Err(StoreError::Conflict(_)) => return Err(AuthError::AlreadyClaimed),
            other => other?,
        };
        self.start_session(user, client, None).await
    }

    /// What stands before anything that takes over an unclaimed box (creating its owner, or
    /// restoring a homelab onto it): the box is not claimed yet, and after the open window
    /// (always, with `code_always`) the setup code from its console is given. A restore
    /// always needs it: it brings keys the one who made the backup knows, so whoever is on
    /// the LAN in the first minutes must not be able to choose them.
    pub async fn setup_gate(
        &self,
        setup_code: Option<&str>,
        client: &Client,
        code_always: bool,
    ) -> Result<(), AuthError> {
        let status = self.claim_status().await?;
        if status.claimed {
            return Err(AuthError::AlreadyClaimed);
        }
        // Only wrong setup codes count against an address; a locked address cannot claim.
        let ip_key = [Key::new(
            format!("setup-ip:{}", throttled_network(client.addr)),
            IP_WAIT_CAP,
        )];
        let typed = setup_code
            .map(tokens::normalise_setup_code)
            .unwrap_or_default();
        // Inside the open window no code is needed, but a code that is typed must be right:
        // a mistyped code is a mistake worth telling about (and the appliance's boot test uses
        // it to prove the console shows the daemon's code).
        if status.code_required || code_always || !typed.is_empty() {
            if typed.is_empty() {
                return Err(AuthError::SetupCodeRequired);
            }
            let attempt = self
                .throttle
                .reserve(&ip_key)
                .map_err(AuthError::Throttled)?;
            let expected = self.setup_code().await?.ok_or(AuthError::AlreadyClaimed)?;
            let expected = tokens::normalise_setup_code(expected.expose_str().unwrap_or_default());
            if !tokens::ct_eq(&typed, &expected) {
                // The attempt stays counted as a failure.
                return Err(AuthError::WrongSetupCode);
            }
            self.throttle.succeed(attempt);
        } else if let Some(wait) = self.throttle.wait_for(&ip_key) {
            return Err(AuthError::Throttled(wait));
        }
        Ok(())
    }

    /// Checks a username and password, with throttling, and starts a session.
    ///
    /// The attempt is counted before the password is hashed (see `throttle`). A browser that
    /// signed in as this user before is throttled by its own failures only; any other client
    /// by its address and by the account, so a stranger's guesses cannot keep the owner out.
    pub async fn login(
        &self,
        username: &str,
        password: Secret,
        client: &Client,
    ) -> Result<NewSession, AuthError> {
        let name = username.trim();
        if name.chars().nth(MAX_USERNAME_INPUT).is_some() {
            // No account can have such a name (usernames have at most 32 characters), so the
            // quick answer reveals nothing; it still counts against the address.
            let ip_key = Key::new(
                format!("ip:{}", throttled_network(client.addr)),
                IP_WAIT_CAP,
            );
            let _failed = self
                .throttle
                .reserve(&[ip_key])
                .map_err(AuthError::Throttled)?;
            return Err(AuthError::BadCredentials);
        }
        let known = self.known_browser(client, name).await?;
        let attempt = self
            .throttle
            .reserve(&self.attempt_keys(client, name, known.as_deref()))
            .map_err(AuthError::Throttled)?;
        let user = self.store.user_by_name(name.to_string()).await?;
        // Verify against a dummy hash for unknown users so timing does not reveal which
        // usernames exist.
        let phc = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.to_string());
        let checked = match self
            .verify(password, phc, user.is_some(), known.is_some())
            .await
        {
            Err(AuthError::Busy) => {
                // Nothing was checked: the attempt does not count.
                self.throttle.cancel(attempt);
                return Err(AuthError::Busy);
            }
            other => other?,
        };
        match user {
            Some(user) if checked.ok => {
                self.throttle.succeed(attempt);
                if let Some(upgraded) = checked.upgraded {
                    // Best effort: a failure leaves the old (still valid) hash in place.
                    if let Err(e) = self
                        .store
                        .upgrade_password_hash(user.id, user.password_hash.clone(), upgraded)
                        .await
                    {
                        tracing::warn!(error = %e, "could not store the upgraded password hash");
                    }
                }
                self.start_session(user, client, known).await
            }
            // The attempt stays counted as a failure.
            _ => Err(AuthError::BadCredentials),
        }
    }

    /// The throttle keys of an attempt to prove `username`'s password: the known browser's
    /// own key, or the address's and the account's.
    fn attempt_keys(&self, client: &Client, username: &str, known: Option<&[u8]>) -> Vec<Key> {
        match known {
            Some(hash) => {
                let id: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
                vec![Key::new(format!("browser:{id}"), BROWSER_WAIT_CAP)]
            }
            None => vec![
                Key::new(
                    format!("ip:{}", throttled_network(client.addr)),
                    IP_WAIT_CAP,
                ),
                Key::new(
                    format!("user:{}", username.to_lowercase()),
                    ACCOUNT_WAIT_CAP,
                ),
            ],
        }
    }

    /// The stored hash of the client's known-browser cookie, if that browser signed in as
    /// `username` within `BROWSER_LIFETIME`.
    async fn known_browser(
        &self,
        client: &Client,
        username: &str,
    ) -> Result<Option<Vec<u8>>, AuthError> {
        let Some(value) = client
            .browser
            .as_deref()
            .filter(|v| tokens::is_token_shaped(v))
        else {
            return Ok(None);
        };
        let hash = tokens::hash_token(value);
        let max_age = BROWSER_LIFETIME.as_secs() as i64;
        match self.store.known_browser(hash.clone(), max_age).await? {
            Some(name) if name.eq_ignore_ascii_case(username) => Ok(Some(hash)),
            _ => Ok(None),
        }
    }

    /// Starts a session and remembers the browser (the one it proved to be, or a new one).
    async fn start_session(
        &self,
        user: User,
        client: &Client,
        known: Option<Vec<u8>>,
    ) -> Result<NewSession, AuthError> {
        let token = tokens::new_token("");
        let hash = tokens::hash_token(token.expose_str().unwrap_or_default());
        let ua: String = client.user_agent.chars().take(200).collect();
        self.store
            .create_session(hash, user.id, client.addr.to_string(), ua)
            .await?;
        let (browser, browser_hash) = match (known, client.browser.as_deref()) {
            (Some(hash), Some(value)) => (Secret::from_string(value.to_string()), hash),
            _ => {
                let fresh = tokens::new_token("");
                let hash = tokens::hash_token(fresh.expose_str().unwrap_or_default());
                (fresh, hash)
            }
        };
        self.store
            .remember_browser(browser_hash, user.id, BROWSERS_KEPT)
            .await?;
        Ok(NewSession {
            token,
            user,
            browser,
        })
    }

    /// The hashing queue for a request: known browsers have their own lane.
    fn lane(&self, known: bool) -> &HashQueue {
        if known {
            &self.known_hashes
        } else {
            &self.hashes
        }
    }

    /// Hashes a new password through the hashing queue.
    async fn hash(&self, password: Secret, known: bool) -> Result<String, AuthError> {
        self.lane(known)
            .run(move || password::hash(&password))
            .await
            .map_err(|_| AuthError::Busy)?
            .map_err(|e| AuthError::Hash(e.to_string()))?
            .map_err(AuthError::Hash)
    }

    /// Verifies a password through the hashing queue; with `upgrade`, a right password whose
    /// hash has old parameters is hashed afresh in the same turn.
    async fn verify(
        &self,
        password: Secret,
        phc: String,
        upgrade: bool,
        known: bool,
    ) -> Result<Checked, AuthError> {
        self.lane(known)
            .run(move || {
                let ok = password::verify(&password, &phc);
                let upgraded = (ok && upgrade && password::needs_rehash(&phc))
                    .then(|| password::hash(&password).ok())
                    .flatten();
                Checked { ok, upgraded }
            })
            .await
            .map_err(|_| AuthError::Busy)?
            .map_err(|e| AuthError::Hash(e.to_string()))
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

    /// Ends every session of the user, this one included, and forgets every known browser
    /// (a lost phone is then throttled like any stranger); returns how many sessions ended.
    pub async fn logout_everywhere(&self, user_id: i64) -> Result<usize, AuthError> {
        let ended = self.store.delete_user_sessions(user_id).await?;
        self.store.forget_browsers(user_id).await?;
        Ok(ended)
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

    /// Changes the admin password after checking the current one; ends all sessions. Wrong
    /// current passwords are throttled exactly like sign-in attempts.
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
        let known = self.known_browser(client, &user.username).await?;
        if !self
            .password_is_right(&user, current, client, &known)
            .await?
        {
            return Err(AuthError::Invalid(
                "The current password is not right.".into(),
            ));
        }
        let hash = self.hash(new, known.is_some()).await?;
        self.store.set_password(user.id, hash).await?;
        // Other browsers are signed out and no longer known; this one is remembered again.
        self.store.forget_browsers(user.id).await?;
        self.start_session(user, client, known).await
    }
}

impl Auth {
    /// Asks a signed-in user for their password again before something a stolen session must
    /// not do alone (exporting every secret). Counted by the same throttle as sign-ins.
    pub async fn confirm_password(
        &self,
        username: &str,
        typed: Secret,
        client: &Client,
    ) -> Result<(), AuthError> {
        let user = self
            .store
            .user_by_name(username.to_string())
            .await?
            .ok_or(AuthError::BadCredentials)?;
        let known = self.known_browser(client, &user.username).await?;
        if self.password_is_right(&user, typed, client, &known).await? {
            Ok(())
        } else {
            Err(AuthError::Invalid(
                "Your password is not right: type the one you sign in with.".into(),
            ))
        }
    }

    /// Checks a signed-in user's password under the sign-in throttle: a wrong one stays
    /// counted as a failed attempt.
    async fn password_is_right(
        &self,
        user: &User,
        typed: Secret,
        client: &Client,
        known: &Option<Vec<u8>>,
    ) -> Result<bool, AuthError> {
        let attempt = self
            .throttle
            .reserve(&self.attempt_keys(client, &user.username, known.as_deref()))
            .map_err(AuthError::Throttled)?;
        let checked = match self
            .verify(typed, user.password_hash.clone(), false, known.is_some())
            .await
        {
            Err(AuthError::Busy) => {
                self.throttle.cancel(attempt);
                return Err(AuthError::Busy);
            }
            other => other?,
        };
        if checked.ok {
            self.throttle.succeed(attempt);
        }
        Ok(checked.ok)
    }
}

/// The outcome of a verification.
struct Checked {
    ok: bool,
    /// A fresh hash of the right password, when the stored one had old parameters.
    upgraded: Option<String>,
}

/// A valid Argon2id hash of a random string nobody knows, verified for unknown usernames. Made
/// with this build's parameters, so unknown usernames take as long (and as much memory) as
/// known ones.
const DUMMY_HASH: &str = "$argon2id$v=19$m=47104,t=1,p=1$QPzaawm4keqTACJ/f9jSuA$5TVS68RMFHmyeFp6fFG6qvFhjBWr33ombR6lZA6rKI0";

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
        assert!(
            !password::needs_rehash(DUMMY_HASH),
            "the dummy hash has the current parameters, so it costs what a real one does"
        );
    }

    #[test]
    fn ipv6_failures_count_per_64() {
        let net = |s: &str| throttled_network(s.parse().unwrap());
        assert_eq!(net("2001:db8:1:2::1"), net("2001:db8:1:2:ffff::9"));
        assert_ne!(net("2001:db8:1:2::1"), net("2001:db8:1:3::1"));
        assert_eq!(net("::ffff:10.0.0.5"), "10.0.0.5");
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
