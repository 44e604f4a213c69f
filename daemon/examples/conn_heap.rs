use std::sync::Arc;
use homelabd::ssh::{self, HostKeyPolicy, Login};
use homelabd::secrets::Secret;
#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let login = Login::Password { user: "homelab".into(), password: Secret::from_string("lab-device-login-2026".into()) };
    let mut v = Vec::new();
    let h0 = homelabd::heap::in_use();
    for ip in ["10.88.0.11","10.88.0.12","10.88.0.13","10.88.0.15"] { for _ in 0..2 {
        let s = Arc::new(ssh::connect(ip, 22, &login, HostKeyPolicy::FirstUse).await.unwrap());
        v.push(s);
    }}
    let h1 = homelabd::heap::in_use();
    println!("per session: {} bytes", (h1-h0)/v.len());
    let mut d = Vec::new();
    for s in &v { d.push(homelabd::docker::connect(s.clone(), "/var/run/docker.sock").await.unwrap()); }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let h2 = homelabd::heap::in_use();
    println!("per docker client: {} bytes", (h2-h1)/v.len());
    for x in &d { x.info().await.unwrap(); }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let h3 = homelabd::heap::in_use();
    println!("after one info each: {} bytes per session", (h3-h2)/v.len());
}
