//! Names for apps on the owner's network: announcing `.local` names over mDNS (`mdns`) and checking from the box that a name resolves and answers securely (`check`).

pub mod check;
pub mod mdns;
