//! Names for apps on the owner's network: which DNS holds them and placing records there
//! (`records`), AdGuard Home's API (`adguard`), announcing `.local` names over mDNS (`mdns`),
//! and checking from the box that a name resolves and answers securely (`check`).

pub mod adguard;
pub mod check;
pub mod mdns;
pub mod public;
pub mod records;
