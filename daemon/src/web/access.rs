//! Access levels: each route in the table (`routes.rs`) declares one, and the guard
//! (`guard.rs`) enforces it before the handler runs. Its own file so the table and the guard
//! both depend on it rather than on each other.

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the setup and sign-in pages, static assets, `/healthz`.
    Public,
    /// A signed-in browser session (state changes also need the CSRF token).
    Session,
    /// A session or an API token (the JSON API).
    SessionOrToken,
    /// An API token only (`/metrics`, scraped by machines).
    Token,
}
