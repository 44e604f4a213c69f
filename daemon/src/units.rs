//! Numbers in the owner's words, shared by every layer that shows them (a leaf module).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(8 * 1024 * 1024 * 1024), "8.0 GB");
        assert_eq!(human_bytes(500 * 1024 * 1024 * 1024), "500 GB");
    }
}
