//! Upper bounds on what clients may make us store or log, in one place so the numbers are
//! reviewed together, and the two helpers that apply them: [`check`] refuses an over-long input
//! at the edge with a message saying the limit, [`truncate`] is the last line of defence where
//! refusing is not possible (the audit log, log lines).
//!
//! Lengths count characters (what a person sees), not bytes; a character is at most 4 bytes,
//! so a bound of N characters is at most 4N bytes stored.

/// Request bodies of forms and JSON: far above any form we serve, far below memory trouble.
/// Update bundles have their own limit (`web::views::updates`).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A name a person gives something (a device, an API token).
pub const NAME: usize = 64;
/// A host name or IP address (DNS names are at most 253 characters).
pub const ADDRESS: usize = 253;
/// A login name on a device (Linux allows 32 by default; some systems more).
pub const LOGIN: usize = 32;
/// The path of a Docker socket on a device.
pub const DOCKER_SOCKET: usize = 256;
/// A password or other secret typed into a form (long passphrases fit; megabytes do not).
pub const SECRET: usize = 1024;
/// A private key pasted into a form (a 16384-bit RSA key in PEM is about 12 KB).
pub const PRIVATE_KEY: usize = 16 * 1024;
/// One value of an app setting (a path, a domain, a time zone, a password).
pub const SETTING_VALUE: usize = 4096;
/// An URL (update channel).
pub const URL: usize = 2048;
/// A short identifier chosen from a list (a UI mode, an action, a slug).
pub const WORD: usize = 64;

/// What a device answered (an app's error output) as kept in a deployment's record and logged;
/// the whole output stays on the device.
pub const DEVICE_OUTPUT: usize = 8 * 1024;

/// Audit fields, cut at the store edge whatever the caller passed.
pub const AUDIT_ACTOR: usize = 128;
pub const AUDIT_DETAIL: usize = 1024;

/// `s` cut to at most `max` characters, with "…" marking a cut.
pub fn truncate(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => std::borrow::Cow::Borrowed(s),
        Some((end, _)) => {
            // Keep room for the ellipsis so the result is at most `max` characters.
            let keep = s[..end]
                .char_indices()
                .nth(max.saturating_sub(1))
                .map_or(end, |(i, _)| i);
            std::borrow::Cow::Owned(format!("{}…", &s[..keep]))
        }
    }
}

/// Refuses `value` when it has more than `max` characters, saying which field, the limit and
/// what to do. `what` is the field as the form calls it, e.g. "device name".
pub fn check(what: &str, value: &str, max: usize) -> Result<(), String> {
    let n = value.chars().count();
    if n > max {
        return Err(format!(
            "The {what} is {n} characters long; at most {max} are accepted. Shorten it and try again."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_short_text_and_marks_a_cut() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ééééé", 4).chars().count(), 4);
        assert_eq!(truncate("", 0), "");
    }

    #[test]
    fn check_names_the_field_and_the_limit() {
        assert!(check("device name", "pi", NAME).is_ok());
        let e = check("device name", &"x".repeat(65), NAME).unwrap_err();
        assert!(
            e.contains("device name") && e.contains("65") && e.contains("64"),
            "{e}"
        );
    }
}
