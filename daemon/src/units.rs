//! Values written the way people read them (sizes, addresses), shared by every layer that
//! shows them (a leaf module).

/// "7.5 GB"-style sizes (powers of 1024, as the OS reports them).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 || v >= 100.0 {
        format!("{v:.0} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Bytes as lowercase hex (digests, random names).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `host:port`, with an IPv6 address in brackets (`[fd00::5]:22`), as URLs and SSH write it.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A length of time in words for a sentence: "45 s", "3 min", "1 min 30 s", "2 h 5 min".
pub fn human_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s} s"),
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, 0, _) => format!("{h} h"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

/// A Unix time as a calendar date in UTC (`2027-03-01`), for expiry dates in sentences.
pub fn date_utc(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!("{}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Err(_) => "an unknown date".into(),
    }
}

/// "2026-11-25 21:04 UTC". The box has no user time zone setting yet, so times say UTC.
pub fn format_time(unix: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(host_port("10.0.0.5", 22), "10.0.0.5:22");
        assert_eq!(host_port("fd00::5", 22), "[fd00::5]:22");
        assert_eq!(host_port("pi.local", 2222), "pi.local:2222");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(8 * 1024 * 1024 * 1024), "8.0 GB");
        assert_eq!(human_bytes(500 * 1024 * 1024 * 1024), "500 GB");
    }

    #[test]
    fn lengths_of_time() {
        for (secs, words) in [
            (0, "0 s"),
            (45, "45 s"),
            (60, "1 min"),
            (90, "1 min 30 s"),
            (180, "3 min"),
            (3600, "1 h"),
            (7500, "2 h 5 min"),
        ] {
            assert_eq!(human_duration(secs), words);
        }
    }
}
