//! SSH to devices (russh): connecting with host-key pinning, logging in by password or key,
//! running escaped commands with secrets on stdin, and opening the device's Docker socket as a
//! stream. Errors are classified so the UI can say what is wrong and how to fix it.

pub mod command;
pub mod keys;
mod socket;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};
use tokio::net::TcpStream;

pub use command::RemoteCommand;
pub use socket::SocketStream;

use crate::secrets::Secret;

/// Time to reach the device and finish the SSH handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for the device to accept or refuse a login.
const AUTH_TIMEOUT: Duration = Duration::from_secs(15);
/// Default time a remote command may run.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(60);
/// Keepalive: a dead link is noticed after about 3 × 15 s (russh has keepalive off by default).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
const KEEPALIVE_MAX: usize = 3;
/// Output kept from one command; more is cut (commands here print kilobytes).
const MAX_OUTPUT: usize = 4 * 1024 * 1024;
/// Channels a device may leave open (socket channels it never closed, commands that outran
/// their time) before its connection is replaced: each holds a little memory in russh, and the
/// device a process, until the connection ends.
const MAX_STRANDED: u32 = 32;

/// Why talking to a device failed, each with what to do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SshError {
    #[error("Could not reach {addr}: {detail}. Is the device powered on and the address right?")]
    Unreachable { addr: String, detail: String },
    #[error("{addr} did not answer in time. Is the device powered on and on this network?")]
    Timeout { addr: String },
    #[error(
        "{addr} refused the connection: remote login (SSH) is not enabled on it. Turn on the SSH server (e.g. `sudo apt install openssh-server`)."
    )]
    Refused { addr: String },
    #[error(
        "The device at {addr} identifies itself with a different key than before ({seen}, expected {expected}). \
         Nothing was sent to it. If you reinstalled its system, trust the new key; otherwise someone may be impersonating it."
    )]
    HostKeyChanged {
        addr: String,
        expected: String,
        seen: String,
        seen_key: String,
    },
    #[error("The device refused the login for “{user}”: wrong password or key.")]
    AuthFailed { user: String },
    #[error("{0}")]
    Key(String),
    #[error("SSH error with {addr}: {detail}")]
    Protocol { addr: String, detail: String },
    #[error("The command on the device did not finish within {0:?}.")]
    CommandTimeout(Duration),
    /// The connection went away while a command ran (cable pulled, device off or rebooting):
    /// the command's outcome is unknown.
    #[error("The connection to {addr} was lost while a command ran on it.")]
    Lost { addr: String },
}

impl SshError {
    /// The same news for Basic mode: what happened and what to do, without addresses, ports,
    /// protocol names or system error codes (those stay in `Display`, for Advanced mode and
    /// logs).
    pub fn plain(&self) -> String {
        match self {
            SshError::Unreachable { .. } => {
                "Could not reach the device. Is it powered on and the address right?".into()
            }
            SshError::Timeout { .. } => {
                "The device did not answer in time. Is it powered on and on this network?".into()
            }
            SshError::Refused { .. } => "The device answered but does not accept remote logins. \
                 Turn on remote login on it (Advanced mode shows how), then try again."
                .into(),
            SshError::HostKeyChanged { .. } => "The device identifies itself differently than \
                 before. Nothing was sent to it. If you reinstalled its system, trust its new \
                 identity; otherwise someone may be impersonating it."
                .into(),
            SshError::AuthFailed { user } => {
                format!("The device refused the login for “{user}”: wrong password or key file.")
            }
            SshError::Key(_) => "The key file could not be used. Paste the whole file, and its \
                 passphrase if it has one."
                .into(),
            SshError::Protocol { .. } => "Homelab could not talk to the device. Try again; if it \
                 keeps happening, Advanced mode shows the details."
                .into(),
            SshError::CommandTimeout(_) => "The device took too long to answer. Try again.".into(),
            SshError::Lost { .. } => "The device stopped answering: it may be off, unplugged or \
                 restarting. Check that it is on and connected, then try again."
                .into(),
        }
    }
}

/// How to log in.
pub enum Login {
    Password { user: String, password: Secret },
    Key { user: String, key: Arc<PrivateKey> },
}

impl Login {
    pub fn user(&self) -> &str {
        match self {
            Login::Password { user, .. } | Login::Key { user, .. } => user,
        }
    }
}

/// Which host key to accept.
#[derive(Clone)]
pub enum HostKeyPolicy {
    /// Only this key (pinned at adoption).
    Pinned(PublicKey),
    /// Whatever the device shows; the caller pins it (first contact).
    FirstUse,
}

/// Records the key the server showed and enforces the policy; hands connections the device
/// opens back to the box (on a port it forwards, `Session::forward_back`) to whoever asked.
struct Checker {
    policy: HostKeyPolicy,
    seen: Arc<Mutex<Option<PublicKey>>>,
    forwards: Forwards,
    sockets: Arc<socket::SocketCounts>,
}

/// The ports a device forwards back to the box, each with where its connections go.
/// Bounded by the runs open at once (one each, on a connection of the run's own).
type Forwards = Arc<Mutex<std::collections::HashMap<u32, tokio::sync::mpsc::Sender<SocketStream>>>>;

/// Connections waiting on one forwarded port beyond those being served: a few, then closed.
const FORWARD_QUEUE: usize = 4;

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false); // host certificates are not supported; plain keys are pinned
        };
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(key.clone());
        Ok(match &self.policy {
            HostKeyPolicy::FirstUse => true,
            HostKeyPolicy::Pinned(pinned) => pinned.key_data() == key.key_data(),
        })
    }

    /// A connection made on the device to a port it forwards back: handed to that port's
    /// receiver, or refused when nothing here asked for the port (or its queue is full).
    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<client::Msg>,
        _connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        _originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        // Asked for on the device's loopback; a server set to bind it wider anyway
        // (`GatewayPorts yes`) must not let the network in.
        let local = originator_address
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
        let to = self
            .forwards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&connected_port)
            .cloned()
            .filter(|_| local);
        match to {
            Some(to) if to.capacity() > 0 => {
                reply.accept().await;
                // Never closed first (see `socket`): a stream nobody takes ends with EOF.
                let _ = to.try_send(SocketStream::new(channel, self.sockets.clone()));
            }
            _ => {
                tracing::debug!(
                    port = connected_port,
                    "refused a connection on a port not forwarded"
                );
                reply
                    .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                    .await;
            }
        }
        Ok(())
    }
}

/// A port on the device's own loopback that leads back to the box over this connection: what
/// connects to `127.0.0.1:<port>` on the device arrives in `incoming`. It ends with its
/// connection (each forward has one of its own, see `disk_server::Tunnel`).
pub struct Forward {
    pub port: u32,
    pub incoming: tokio::sync::mpsc::Receiver<SocketStream>,
}

/// Result of a remote command.
#[derive(Debug, Default)]
pub struct Output {
    /// None when the command was killed by a signal or the channel closed early.
    pub status: Option<u32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).to_string()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }
}

/// A logged-in SSH connection. Channels (commands, the Docker socket) are opened on it
/// concurrently; each is drained by its user so none stalls the connection.
pub struct Session {
    handle: Handle<Checker>,
    pub addr: String,
    pub host_key: PublicKey,
    sockets: Arc<socket::SocketCounts>,
    forwards: Forwards,
}

/// Connects and logs in.
pub async fn connect(
    host: &str,
    port: u16,
    login: &Login,
    policy: HostKeyPolicy,
) -> Result<Session, SshError> {
    let addr = crate::units::host_port(host, port);
    let tcp = tcp_connect(host, port, &addr).await?;
    let seen = Arc::new(Mutex::new(None));
    let config = Arc::new(client::Config {
        keepalive_interval: Some(KEEPALIVE_INTERVAL),
        keepalive_max: KEEPALIVE_MAX,
        nodelay: true,
        ..Default::default()
    });
    let sockets: Arc<socket::SocketCounts> = Arc::default();
    let forwards: Forwards = Arc::default();
    let checker = Checker {
        policy: policy.clone(),
        seen: seen.clone(),
        forwards: forwards.clone(),
        sockets: sockets.clone(),
    };
    let handshake = tokio::time::timeout(
        CONNECT_TIMEOUT,
        client::connect_stream(config, tcp, checker),
    )
    .await;
    let seen_key = || seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut handle = match handshake {
        Err(_) => return Err(SshError::Timeout { addr }),
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            if let (HostKeyPolicy::Pinned(expected), Some(got)) = (&policy, seen_key())
                && expected.key_data() != got.key_data()
            {
                return Err(SshError::HostKeyChanged {
                    addr,
                    expected: keys::fingerprint(expected),
                    seen: keys::fingerprint(&got),
                    seen_key: got.to_openssh().unwrap_or_default(),
                });
            }
            tracing::debug!(%addr, error = ?e, "SSH handshake failed");
            return Err(SshError::Protocol {
                addr,
                detail: e.to_string(),
            });
        }
    };
    let host_key = seen_key().ok_or_else(|| SshError::Protocol {
        addr: addr.clone(),
        detail: "no host key".into(),
    })?;
    let auth = async {
        match login {
            Login::Password { user, password } => {
                let pw = password.expose_str().unwrap_or_default().to_string();
                handle.authenticate_password(user.clone(), pw).await
            }
            Login::Key { user, key } => {
                let hash = handle
                    .best_supported_rsa_hash()
                    .await
                    .ok()
                    .flatten()
                    .flatten();
                handle
                    .authenticate_publickey(
                        user.clone(),
                        PrivateKeyWithHashAlg::new(key.clone(), hash),
                    )
                    .await
            }
        }
    };
    match tokio::time::timeout(AUTH_TIMEOUT, auth).await {
        Err(_) => Err(SshError::Timeout { addr }),
        Ok(Err(e)) => Err(SshError::Protocol {
            addr,
            detail: e.to_string(),
        }),
        Ok(Ok(r)) if r.success() => Ok(Session {
            handle,
            addr,
            host_key,
            sockets,
            forwards,
        }),
        Ok(Ok(_)) => Err(SshError::AuthFailed {
            user: login.user().to_string(),
        }),
    }
}

async fn tcp_connect(host: &str, port: u16, addr: &str) -> Result<TcpStream, SshError> {
    let resolved: Vec<SocketAddr> =
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((host, port))).await {
            Err(_) => return Err(SshError::Timeout { addr: addr.into() }),
            Ok(Err(_)) => {
                return Err(SshError::Unreachable {
                    addr: addr.into(),
                    detail: "the name could not be found on the network".into(),
                });
            }
            Ok(Ok(a)) => a.collect(),
        };
    let mut last = None;
    for sa in resolved {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(sa)).await {
            Err(_) => last = Some(SshError::Timeout { addr: addr.into() }),
            Ok(Ok(s)) => {
                // russh applies its `nodelay` only to sockets it opens itself. Without it, Nagle
                // holds each small SSH packet until the device acknowledges the previous one,
                // which Linux delays by ~40 ms: every channel exchange cost ~40 ms instead of ~1
                // (seen with tcpdump on the lab; see benches/README.md).
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => {
                last = Some(match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => {
                        SshError::Refused { addr: addr.into() }
                    }
                    std::io::ErrorKind::TimedOut => SshError::Timeout { addr: addr.into() },
                    _ => SshError::Unreachable {
                        addr: addr.into(),
                        detail: e.to_string(),
                    },
                })
            }
        }
    }
    Err(last.unwrap_or(SshError::Unreachable {
        addr: addr.into(),
        detail: "no address found".into(),
    }))
}

impl Session {
    /// True once the connection is gone (keepalive failure, device reboot, …) or has stranded
    /// too many channels to keep using; either way the pool opens a new one.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed() || self.sockets.stranded.load(Ordering::Relaxed) >= MAX_STRANDED
    }

    /// Runs a command; `stdin` (e.g. a secret) is sent and closed before output is read.
    pub async fn exec(
        &self,
        cmd: &RemoteCommand,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, SshError> {
        let run = async {
            let mut ch = self
                .handle
                .channel_open_session()
                .await
                .map_err(|e| self.protocol(e))?;
            ch.exec(true, cmd.as_str())
                .await
                .map_err(|e| self.protocol(e))?;
            if let Some(data) = stdin {
                ch.data(data).await.map_err(|e| self.protocol(e))?;
            }
            ch.eof().await.map_err(|e| self.protocol(e))?;
            let mut out = Output::default();
            let mut signalled = false;
            let mut refused = false;
            // Read until the channel closes: every message is consumed, so the connection's
            // flow control never stalls on us.
            while let Some(msg) = ch.wait().await {
                match msg {
                    ChannelMsg::Data { data } => append(&mut out.stdout, &data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => append(&mut out.stderr, &data),
                    ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
                    ChannelMsg::ExitSignal { .. } => signalled = true,
                    ChannelMsg::Failure => refused = true,
                    _ => {}
                }
            }
            // No exit status and no signal: the channel ended because the connection did (a
            // keepalive gave up). Saying "failed" with empty output would hide that.
            if refused && out.status.is_none() {
                return Err(SshError::Protocol {
                    addr: self.addr.clone(),
                    detail: "the device refused to run the command".into(),
                });
            }
            if out.status.is_none() && !signalled {
                return Err(SshError::Lost {
                    addr: self.addr.clone(),
                });
            }
            Ok(out)
        };
        tokio::time::timeout(timeout, run).await.map_err(|_| {
            // The command may still run on the device, holding its channel (and russh's entry
            // for it) open: counted as stranded, so a connection that piles them up is replaced.
            self.sockets.stranded.fetch_add(1, Ordering::Relaxed);
            SshError::CommandTimeout(timeout)
        })?
    }

    /// Opens a Unix socket on the device (e.g. Docker's) as a byte stream.
    pub async fn open_socket(&self, path: &str) -> Result<SocketStream, SshError> {
        let ch = self
            .handle
            .channel_open_direct_streamlocal(path)
            .await
            .map_err(|e| self.protocol(e))?;
        Ok(SocketStream::new(ch, self.sockets.clone()))
    }

    /// Asks the device to listen on a free port of its own loopback (`127.0.0.1` only) and
    /// send what connects there back over this connection. The device's SSH server must allow
    /// it (`AllowTcpForwarding`, on by default in OpenSSH).
    pub async fn forward_back(&self) -> Result<Forward, SshError> {
        let port = self
            .handle
            .tcpip_forward("127.0.0.1", 0)
            .await
            .map_err(|e| match e {
                russh::Error::RequestDenied => SshError::Protocol {
                    addr: self.addr.clone(),
                    detail: "the device's SSH server does not allow port forwarding (AllowTcpForwarding)".into(),
                },
                e => self.protocol(e),
            })?;
        let (tx, incoming) = tokio::sync::mpsc::channel(FORWARD_QUEUE);
        self.forwards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(port, tx);
        Ok(Forward { port, incoming })
    }

    /// Socket channels opened on this connection that the device has not closed yet (in use,
    /// or just dropped and waiting for the device's close).
    pub fn open_sockets(&self) -> u32 {
        self.sockets.open.load(Ordering::Relaxed)
    }

    pub async fn close(&self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }

    fn protocol(&self, e: russh::Error) -> SshError {
        tracing::debug!(addr = %self.addr, error = ?e, "SSH channel error");
        SshError::Protocol {
            addr: self.addr.clone(),
            detail: e.to_string(),
        }
    }
}

fn append(buf: &mut Vec<u8>, data: &[u8]) {
    let room = MAX_OUTPUT.saturating_sub(buf.len());
    buf.extend_from_slice(&data[..data.len().min(room)]);
}
