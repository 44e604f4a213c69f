//! App names over mDNS against an independent implementation: the box (this test process,
//! restricted to the lab bridge) announces `vaultwarden.local` for server-02, Avahi inside
//! server-01 resolves it and stops resolving it once withdrawn; a name Avahi already answers
//! on pi-4 makes the box take `<name>-2.local`; and the box's own name check reads `.local`
//! names from both responders.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::avahi::{avahi, publish};
use common::*;
use homelabd::dns::check::{Https, check_on};
use homelabd::dns::mdns::{MdnsError, Names};

/// Only the lab bridge: never announce or ask on this machine's other networks.
fn bridge() -> Vec<String> {
    vec!["hlab0".into()]
}

#[tokio::test]
async fn app_names_resolve_from_another_machine_withdraw_and_step_aside_for_taken_ones() {
    let server_02: IpAddr = lab::ip("server-02").parse().unwrap();
    let pi_4 = lab::ip("pi-4");
    lab::ip("server-01");
    lab::run(&["mdns", "server-01"]);
    lab::run(&["mdns", "pi-4"]);

    let names = Names::start(Some(bridge())).unwrap();
    // homelab.local shares the one daemon with the app names.
    let _box_name =
        homelabd::discovery::Announcer::on(names.daemon().unwrap(), 8080, Some(&bridge())).unwrap();

    // Announce: Avahi on another machine resolves the name to the app's device.
    let used = names.announce("vaultwarden", server_02).await.unwrap();
    assert_eq!(used, "vaultwarden.local");
    let out = eventually(
        "Avahi resolving vaultwarden.local",
        Duration::from_secs(30),
        || async {
            let out = avahi("server-01", "vaultwarden.local");
            if out.contains(&server_02.to_string()) {
                Ok(out)
            } else {
                Err(out)
            }
        },
    )
    .await;
    assert!(out.starts_with("vaultwarden.local"), "{out}");
    let homelab = avahi("server-01", "homelab.local");
    assert!(
        homelab.contains("10.88.0.1"),
        "the box's own name on the shared daemon: {homelab}"
    );

    // Our own announcement does not count as taken: the same name comes back.
    assert_eq!(
        names.announce("vaultwarden", server_02).await.unwrap(),
        "vaultwarden.local"
    );
    assert_eq!(
        names.announced(),
        vec![("vaultwarden.local".to_string(), server_02)]
    );

    // The box's check reads the name the way any machine on the network would.
    let root = rcgen_root();
    let c = check_on(
        Some(&bridge()),
        "vaultwarden.local",
        server_02,
        &homelabd::tls::trust::Trust::only(&root).unwrap(),
        1,
    )
    .await;
    assert!(c.resolves && c.points_right, "{c:?}");
    assert_eq!(c.https, Https::NothingListening, "{c:?}");

    // Withdraw: Avahi stops resolving it.
    names.withdraw("vaultwarden.local").await.unwrap();
    names.withdraw("vaultwarden.local").await.unwrap(); // absent is fine
    assert!(names.announced().is_empty());
    eventually(
        "vaultwarden.local to stop resolving",
        Duration::from_secs(30),
        || async {
            let out = avahi("server-01", "vaultwarden.local");
            if out.contains(&server_02.to_string()) {
                Err(out)
            } else {
                Ok(())
            }
        },
    )
    .await;

    // A name someone else answers on the network: the box takes the next one.
    let _taken = publish("pi-4", "taken.local", &pi_4);
    eventually(
        "Avahi answering taken.local",
        Duration::from_secs(30),
        || async {
            let out = avahi("server-01", "taken.local");
            if out.contains(&pi_4) {
                Ok(())
            } else {
                Err(out)
            }
        },
    )
    .await;
    let c = check_on(
        Some(&bridge()),
        "taken.local",
        server_02,
        &homelabd::tls::trust::Trust::only(&root).unwrap(),
        1,
    )
    .await;
    assert_eq!(
        c.addresses,
        vec![pi_4.parse::<IpAddr>().unwrap()],
        "the legacy mDNS question reads Avahi's answer: {c:?}"
    );
    assert!(!c.points_right);
    let used = names.announce("taken", server_02).await.unwrap();
    assert_eq!(used, "taken-2.local");
    eventually(
        "Avahi resolving taken-2.local to server-02",
        Duration::from_secs(30),
        || async {
            let out = avahi("server-01", "taken-2.local");
            if out.contains(&server_02.to_string()) {
                Ok(())
            } else {
                Err(out)
            }
        },
    )
    .await;
    assert_eq!(
        avahi("server-01", "taken.local").split_whitespace().nth(1),
        Some(pi_4.as_str()),
        "the other device keeps its name"
    );
    names.withdraw(&used).await.unwrap();

    // An address off the box's network cannot be named from here.
    assert!(matches!(
        names
            .announce("elsewhere", "192.0.2.7".parse().unwrap())
            .await,
        Err(MdnsError::NotOnNetwork(_))
    ));
}

#[tokio::test]
async fn bad_names_are_refused_before_anything_goes_on_the_wire() {
    // `off()` has no daemon at all: a refusal here proves validation comes first.
    let names = Names::off();
    let ip: IpAddr = "10.88.0.12".parse().unwrap();
    let long = "a".repeat(64);
    for bad in ["a..b", "-x", long.as_str(), "x.y", "ünïcode", "日本"] {
        let e = names.announce(bad, ip).await.unwrap_err();
        assert!(matches!(e, MdnsError::BadName(_)), "{bad}: {e}");
        assert!(e.to_string().contains("cannot be a name"), "{e}");
    }
}

/// A root certificate the check may trust (nothing in this test serves HTTPS with it).
fn rcgen_root() -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.self_signed(&key).unwrap().der().to_vec()
}
