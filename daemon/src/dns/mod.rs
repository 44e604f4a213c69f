//! Names for apps on the owner's network; for now the AdGuard Home client (`adguard`).

pub mod adguard;
