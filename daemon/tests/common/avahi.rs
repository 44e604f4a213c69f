//! Avahi inside lab devices: what it resolves, and names it publishes (an independent mDNS
//! peer on the lab's network).

use std::process::{Child, Command, Stdio};

use super::lab;

/// What Avahi on `device` resolves `name` to (empty when it does not).
pub fn avahi(device: &str, name: &str) -> String {
    lab::exec(device, &["avahi-resolve", "-4", "-n", name])
}

/// `avahi-publish -a -R NAME IP` inside a device, stopped when dropped. It runs in a process
/// group of its own (lab/lab → nsenter → avahi-publish), so the whole group we started is
/// ended by its id, and nothing else.
pub struct Published(Child);

impl Drop for Published {
    fn drop(&mut self) {
        // A negative pid names the process group (kill(1)).
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.0.wait();
    }
}

pub fn publish(device: &str, name: &str, ip: &str) -> Published {
    use std::os::unix::process::CommandExt;
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../lab/lab");
    let child = Command::new(script)
        .args(["exec", device, "avahi-publish", "-a", "-R", name, ip])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start avahi-publish");
    Published(child)
}
