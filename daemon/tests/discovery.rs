//! mDNS against an independent implementation: Avahi running inside a lab device resolves
//! `homelab.local` to this box, and a device Avahi announces shows up in "Scan my network".

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn homelab_local_resolves_and_the_scan_finds_announced_devices() {
    lab::ip("server-01");
    lab::run(&["mdns", "server-01"]);
    let mut opts = Options::new("mdns");
    // Only the lab bridge: never announce on this machine's other networks.
    opts.mdns_interfaces = Some(vec!["hlab0".into()]);
    let s = start_with(opts).await;
    let (session, _) = s.claim().await;

    let out = eventually(
        "Avahi resolving homelab.local",
        Duration::from_secs(30),
        || async {
            let out = lab::exec("server-01", &["avahi-resolve", "-4", "-n", "homelab.local"]);
            if out.contains("10.88.0.1") {
                Ok(out)
            } else {
                Err(out)
            }
        },
    )
    .await;
    assert!(out.starts_with("homelab.local"), "{out}");

    let html = s.get("/devices/scan", &session).await.text().await.unwrap();
    let item = extract_between(&html, "data-address=\"10.88.0.11\"", "</li>")
        .unwrap_or_else(|| panic!("server-01 not found: {html}"));
    assert!(
        item.contains("server-01")
            && item.contains("Found by mDNS")
            && item.contains("remote login available"),
        "{item}"
    );
    assert!(
        item.contains("/devices/new?name=server-01&amp;host=10.88.0.11"),
        "the Add button pre-fills the form: {item}"
    );
    let form = s
        .get("/devices/new?name=server-01&host=10.88.0.11", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(form.contains("value=\"10.88.0.11\""));
}
