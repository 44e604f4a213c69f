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

/// `host:port`, with an IPv6 address in brackets (`[fd00::5]:22`), as URLs and SSH write it.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
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
}
