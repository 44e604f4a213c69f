//! RAUC through its command line (which talks to the root RAUC service over D-Bus; homelabd
//! itself holds no privilege). Arguments are passed as a list, never through a shell.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// One root slot as RAUC reports it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Slot {
    /// GRUB's name for it: "A" or "B".
    pub bootname: String,
    pub booted: bool,
    /// "good" or "bad" as the bootloader sees it.
    pub boot_status: String,
    /// The version RAUC last installed there, when it installed one.
    pub version: Option<String>,
}

/// `rauc status`, the parts the Updates page shows.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Status {
    pub compatible: String,
    pub booted: String,
    pub slots: Vec<Slot>,
}

/// What a bundle says it is (after its signature was checked against the keyring).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BundleInfo {
    pub compatible: String,
    pub version: String,
    /// The hash of the signed manifest, when RAUC's service reported it (a bundle checked on
    /// the channel): the install then requires that very bundle.
    pub manifest_hash: Option<String>,
}

/// Errors from RAUC, already in words for the owner.
#[derive(Debug, thiserror::Error)]
pub enum RaucError {
    #[error(
        "Updates are not available here: RAUC is not installed (this is not the Homelab appliance)."
    )]
    Missing,
    #[error("{0}")]
    Refused(String),
    /// The bundle could not be read from the update channel (network, HTTP, TLS): the bundle
    /// itself was not judged, so trying again later may work.
    #[error("{0}")]
    Unreachable(String),
    #[error("RAUC failed: {0}")]
    Failed(String),
}

async fn run(rauc: &Path, args: &[&str]) -> Result<(bool, String, String), RaucError> {
    let out = Command::new(rauc)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RaucError::Missing,
            _ => RaucError::Failed(e.to_string()),
        })?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    ))
}

pub async fn status(rauc: &Path) -> Result<Status, RaucError> {
    let (ok, stdout, stderr) = run(rauc, &["status", "--detailed", "--output-format=json"]).await?;
    if !ok {
        return Err(RaucError::Failed(stderr));
    }
    let v: Value = serde_json::from_str(&stdout).map_err(|e| RaucError::Failed(e.to_string()))?;
    Ok(parse_status(&v))
}

fn parse_status(v: &Value) -> Status {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut slots = Vec::new();
    // "slots": [ { "rootfs.0": { … } }, … ]
    for entry in v["slots"].as_array().into_iter().flatten() {
        for (_, s) in entry.as_object().into_iter().flatten() {
            if s["class"] != "rootfs" {
                continue;
            }
            slots.push(Slot {
                bootname: text(&s["bootname"]),
                booted: s["state"] == "booted",
                boot_status: text(&s["boot_status"]),
                version: s["slot_status"]["bundle"]["version"]
                    .as_str()
                    .map(str::to_string),
            });
        }
    }
    Status {
        compatible: text(&v["compatible"]),
        booted: text(&v["booted"]),
        slots,
    }
}

/// Reads a bundle's manifest, checking its signature against the image's keyring; nothing is
/// installed. The refusal says why in the owner's words.
pub async fn info(rauc: &Path, bundle: &Path) -> Result<BundleInfo, RaucError> {
    let path = bundle.to_string_lossy();
    let (ok, stdout, stderr) = run(rauc, &["info", "--output-format=json", &path]).await?;
    if !ok {
        return Err(RaucError::Refused(refusal(&stderr, false)));
    }
    let v: Value = serde_json::from_str(&stdout).map_err(|e| RaucError::Failed(e.to_string()))?;
    Ok(BundleInfo {
        compatible: v["compatible"].as_str().unwrap_or_default().to_string(),
        version: v["version"].as_str().unwrap_or_default().to_string(),
        manifest_hash: None,
    })
}

/// The D-Bus client that asks RAUC's service to read a bundle on the update channel.
const BUSCTL: &str = "busctl";

/// Reads the manifest of a bundle on the update channel without downloading it: RAUC's service
/// streams the bundle's signature and manifest (a few HTTP range requests) and checks the
/// signature against the keyring. `rauc info` cannot do this for homelabd: it streams in the
/// calling process, and the network block device it streams through needs root.
pub async fn inspect_url(url: &str) -> Result<BundleInfo, RaucError> {
    let (ok, stdout, stderr) = run(
        Path::new(BUSCTL),
        &[
            "--system",
            "--json=short",
            // RAUC answers once the signature is fetched and checked: seconds on a LAN, more
            // over a slow link; busctl's own default (25 s) would cut a slow channel short.
            "--timeout=120",
            "call",
            "de.pengutronix.rauc",
            "/",
            "de.pengutronix.rauc.Installer",
            "InspectBundle",
            "sa{sv}",
            url,
            "0",
        ],
    )
    .await
    .map_err(|e| match e {
        RaucError::Missing => RaucError::Failed(format!("{BUSCTL} is not installed")),
        other => other,
    })?;
    if !ok {
        return Err(judged(&stderr, true));
    }
    let v: Value = serde_json::from_str(&stdout).map_err(|e| RaucError::Failed(e.to_string()))?;
    parse_inspected(&v).ok_or_else(|| {
        RaucError::Failed(format!(
            "RAUC's answer has no compatible and version: {stdout}"
        ))
    })
}

/// busctl's JSON of InspectBundle's a{sv}: the manifest's groups, each a variant holding a{sv}:
/// `{"type":"a{sv}","data":[{"update":{"type":"v","data":{"type":"a{sv}","data":{"version":
/// {"type":"s","data":"…"}, …}}}, …}]}`.
fn parse_inspected(v: &Value) -> Option<BundleInfo> {
    let mut update = &v["data"][0]["update"];
    while update["type"] == "v" {
        update = &update["data"];
    }
    let field = |name: &str| update["data"][name]["data"].as_str().map(str::to_string);
    Some(BundleInfo {
        compatible: field("compatible")?,
        version: field("version")?,
        manifest_hash: v["data"][0]["manifest-hash"]["data"]
            .as_str()
            .map(str::to_string),
    })
}

/// A failure of RAUC's, as an error: `Unreachable` when the bundle could not be read from the
/// channel (`streamed`: read over the network, where an I/O error is a failed read as likely
/// as a damaged file), else `Refused`.
fn judged(output: &str, streamed: bool) -> RaucError {
    let text = refusal(output, streamed);
    if streamed && transport_failure(&without_urls(&error_line(output))) {
        RaucError::Unreachable(text)
    } else {
        RaucError::Refused(text)
    }
}

/// The error line without the addresses in it: a host or path such as `tls.lan` or
/// `/ssl/` must not decide what the error was.
fn without_urls(line: &str) -> String {
    line.split_whitespace()
        .filter(|w| !w.contains("://"))
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn tls_failure(s: &str) -> bool {
    s.contains("ssl certificate") || s.contains("ssl connect") || s.contains("tls")
}

fn transport_failure(s: &str) -> bool {
    tls_failure(s)
        || s.contains("http")
        || s.contains("curl")
        || s.contains("nbd")
        || s.contains("timed out")
        || s.contains("input/output error")
}

/// RAUC's reason, turned into what it means for the owner. The original follows in brackets
/// for support. Only RAUC's error line is judged: its progress lines ("Verifying signature…")
/// would mislead. `streamed`: the bundle was read from the update channel.
pub fn refusal(output: &str, streamed: bool) -> String {
    let error = error_line(output);
    let s = without_urls(&error);
    let reason = if tls_failure(&s) {
        "The update channel's HTTPS certificate could not be checked, so nothing was read from it. Check the channel's address."
    } else if s.contains("signature size")
        || s.contains("invalid bundle")
        || s.contains("too small")
    {
        "This is not a signed Homelab update file, so it was not installed."
    } else if streamed && s.contains("input/output error") {
        "The update could not be read whole from the update channel (or the channel's file is damaged). Nothing was started from it; try again later."
    } else if s.contains("input/output error") || s.contains("verity") || s.contains("splicing") {
        "This update file is damaged: its contents do not match its signature. Nothing was started from it; get the file again."
    } else if s.contains("signature")
        || s.contains("certificate")
        || s.contains("verify")
        || s.contains("cms")
    {
        "This update file is not signed by a key this Homelab trusts, so it was not installed."
    } else if s.contains("compatible") {
        "This update file is for a different kind of device."
    } else if s.contains("unexpected hash") {
        "The update channel now serves another file than the one checked. Get the update ready again."
    } else if transport_failure(&s) {
        "The update could not be read from the update channel. Is the box online and the channel up? Nothing changed; try again."
    } else {
        "The update file was refused."
    };
    if error.is_empty() {
        reason.to_string()
    } else {
        format!("{reason} (RAUC: {error})")
    }
}

/// RAUC's own error: "LastError: …" from an install, else the last line that says what
/// failed (its chatter, the progress lines and the closing "… failed" line skipped).
fn error_line(output: &str) -> String {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("rauc-Message") && progress_line(l).is_none())
        .collect();
    if let Some(e) = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("LastError:"))
    {
        return e.trim().to_string();
    }
    let failing = |l: &&&str| {
        let l = l.to_lowercase();
        (l.contains("error") || l.contains("failed") || l.contains("invalid"))
            && !l.starts_with("installing `")
    };
    lines
        .iter()
        .rev()
        .find(failing)
        .or(lines.last())
        .map(|l| l.to_string())
        .unwrap_or_default()
}

/// Where an install reads its bundle.
pub enum Bundle<'a> {
    File(&'a Path),
    /// Streamed from the update channel; with the manifest hash seen when it was checked,
    /// RAUC installs only that very bundle (the channel could serve another one meanwhile).
    Url {
        url: &'a str,
        manifest_hash: Option<&'a str>,
    },
}

/// Installs a bundle into the other slot, reporting (percent, words) as RAUC goes.
pub async fn install(
    rauc: &Path,
    bundle: Bundle<'_>,
    mut progress: impl FnMut(u8, String),
) -> Result<(), RaucError> {
    let mut args: Vec<&OsStr> = vec![OsStr::new("install")];
    let streamed = matches!(bundle, Bundle::Url { .. });
    let hash_arg;
    match bundle {
        Bundle::File(path) => args.push(path.as_os_str()),
        Bundle::Url { url, manifest_hash } => {
            if let Some(hash) = manifest_hash {
                hash_arg = format!("--require-manifest-hash={hash}");
                args.push(OsStr::new(&hash_arg));
            }
            args.push(OsStr::new(url));
        }
    }
    let mut child = Command::new(rauc)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false) // an install in flight is RAUC's to finish, not ours to cut
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RaucError::Missing,
            _ => RaucError::Failed(e.to_string()),
        })?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            text.push_str(&l);
            text.push('\n');
        }
        text
    });
    let mut out_text = String::new();
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some((pct, words)) = progress_line(&line) {
            progress(pct, words);
        }
        out_text.push_str(&line);
        out_text.push('\n');
    }
    let status = child
        .wait()
        .await
        .map_err(|e| RaucError::Failed(e.to_string()))?;
    let err_text = errors.await.unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    Err(judged(&format!("{out_text}{err_text}"), streamed))
}

/// "  40% Checking bundle done." → (40, "Checking bundle done.")
fn progress_line(line: &str) -> Option<(u8, String)> {
    let line = line.trim();
    let (pct, rest) = line.split_once('%')?;
    let pct: u8 = pct.trim().parse().ok()?;
    Some((pct.min(100), rest.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines() {
        assert_eq!(
            progress_line("  40% Checking bundle done."),
            Some((40, "Checking bundle done.".into()))
        );
        assert_eq!(
            progress_line("100% Installing done."),
            Some((100, "Installing done.".into()))
        );
        assert_eq!(progress_line("installing `x`: succeeded"), None);
    }

    #[test]
    fn status_json() {
        let v: Value = serde_json::from_str(
            r#"{"compatible":"homelab-standin-x86_64","booted":"A","boot_primary":"rootfs.0",
            "slots":[{"rootfs.0":{"class":"rootfs","state":"booted","bootname":"A","boot_status":"good",
            "slot_status":{"bundle":{"version":"1.0"}}}},
            {"rootfs.1":{"class":"rootfs","state":"inactive","bootname":"B","boot_status":"bad"}}]}"#,
        )
        .unwrap();
        let s = parse_status(&v);
        assert_eq!(s.booted, "A");
        assert_eq!(s.slots.len(), 2);
        assert!(s.slots[0].booted);
        assert_eq!(s.slots[0].version.as_deref(), Some("1.0"));
        assert_eq!(s.slots[1].boot_status, "bad");
        assert_eq!(s.slots[1].version, None);
    }

    #[test]
    fn inspected_bundle_from_busctl() {
        // busctl's answer to InspectBundle on the Buildroot image (RAUC 1.15), as it came
        // (the "images" and "meta" groups left out).
        let v: Value = serde_json::from_str(
            r#"{"type":"a{sv}","data":[{"update":{"type":"v","data":{"type":"a{sv}","data":{
            "version":{"type":"s","data":"0.1.0-ota2"},"compatible":{"type":"s","data":"homelab-pc-x86_64"},
            "build":{"type":"s","data":"20261208T023517Z"},"description":{"type":"s","data":"Homelab 0.1.0-ota2"}}}},
            "manifest-hash":{"type":"s","data":"b7cefed7d2c0ae5d8b29e80d1db660de1085634943f82ee1ac6bac44e64166e5"},
            "bundle":{"type":"v","data":{"type":"a{sv}","data":{"format":{"type":"s","data":"verity"},
            "verity-size":{"type":"t","data":307200}}}}}]}"#,
        )
        .unwrap();
        let info = parse_inspected(&v).unwrap();
        assert_eq!(info.compatible, "homelab-pc-x86_64");
        assert_eq!(info.version, "0.1.0-ota2");
        assert_eq!(
            info.manifest_hash.as_deref(),
            Some("b7cefed7d2c0ae5d8b29e80d1db660de1085634943f82ee1ac6bac44e64166e5")
        );
        // A manifest without a version is not taken for one with an empty version.
        let v: Value = serde_json::from_str(
            r#"{"type":"a{sv}","data":[{"update":{"type":"v","data":{"type":"a{sv}","data":{"compatible":{"type":"s","data":"x"}}}}}]}"#,
        )
        .unwrap();
        assert!(parse_inspected(&v).is_none());
    }

    #[test]
    fn refusals_in_plain_words() {
        // What RAUC 1.8 says (stderr of `rauc info`, output of `rauc install`).
        let other_key = "rauc-Message: 01:23:14.355: Verifying bundle signature... \n\
            signature verification failed: Verify error: unable to get local issuer certificate";
        assert!(refusal(other_key, false).contains("not signed by a key this Homelab trusts"));
        assert!(
            refusal(
                "rauc-Message: Reading bundle: x\nInvalid bundle format: Signature size is 0",
                false
            )
            .contains("not a signed Homelab update")
        );
        let tampered = "installing\n  0% Installing\n 20% Verifying signature\n 40% Verifying signature done.\n\
            100% Installing failed.\n\
            LastError: Installation error: Failed updating slot rootfs.1: Failed splicing data: Error reading from file: Input/output error\n\
            Installing `/data/homelab/updates/update.raucb` failed";
        let r = refusal(tampered, false);
        assert!(r.contains("damaged"), "{r}");
        assert!(r.contains("Input/output error"), "{r}");
        assert!(matches!(judged(tampered, false), RaucError::Refused(_)));
    }

    #[test]
    fn streamed_failures_are_told_apart_from_refusals() {
        // Read over the network, an I/O error is as likely a failed read: try again later.
        let cut = "LastError: Installation error: Failed updating slot rootfs.1: Failed to copy data: Error reading from file: Input/output error";
        assert!(matches!(judged(cut, true), RaucError::Unreachable(_)));
        assert!(refusal(cut, true).contains("could not be read whole"));
        // An address that happens to name TLS or HTTP decides nothing: this is a signature.
        let other_key = "Reading bundle: https://tls.lan/ssl/homelab.raucb\n\
            signature verification failed: Verify error: unable to get local issuer certificate";
        assert!(refusal(other_key, true).contains("not signed by a key this Homelab trusts"));
        assert!(matches!(judged(other_key, true), RaucError::Refused(_)));
        // What curl says of an untrusted server certificate.
        let tls = "Call failed: Failed to stream bundle https://tls.lan/h.raucb: SSL certificate problem: self-signed certificate";
        assert!(refusal(tls, true).contains("HTTPS certificate"));
        assert!(matches!(judged(tls, true), RaucError::Unreachable(_)));
        // The channel serves another bundle than the one checked.
        let swapped =
            "LastError: Refusing to install bundle with unexpected hash (expected 0c1f, got 9ab2)";
        assert!(refusal(swapped, true).contains("another file than the one checked"));
        assert!(matches!(judged(swapped, true), RaucError::Refused(_)));
    }
}
