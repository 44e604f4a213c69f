//! restic's REST protocol over a folder on a disk plugged into the box, served only to the
//! restic runs the box starts on its devices, through their own SSH connection (a port the
//! device's SSH server forwards back to the box, see `ssh::Forward`): the box opens no port on
//! the network for it. Each run gets its own login, made for it and gone with it, and its own
//! rights: backups and restores add and read, and remove only their own locks (append-only,
//! as rest-server's `--append-only`); the box's upkeep (forget, prune) may remove.
//!
//! The files on the disk are laid out as restic's own local repository (`config`, `keys/`,
//! `data/00…ff/`, `index/`, `snapshots/`, `locks/`), so `restic -r <folder>` opens it on any
//! computer, with no Homelab in the way.

use std::convert::Infallible;
use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{Credentials, DiskAccess, RestLogin};
use crate::secrets::Secret;
use crate::ssh::{Forward, Session};

/// The largest file restic may store (its packs are 16 MiB by default, 128 MiB at most with
/// `--pack-size`; index and snapshot files are smaller): an upload over it is refused before
/// it fills the disk.
pub const MAX_UPLOAD: u64 = 160 << 20;
/// Connections one run may hold at once (restic opens 5 to a REST server by default); more
/// are closed at once, and restic retries on the ones it has.
pub const MAX_CONNECTIONS: usize = 8;
/// How long a client may take to send a request's headers (also while a connection idles
/// between requests): a connection held open and silent is closed.
const HEADER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long the run's SSH connection is given to say goodbye when the run ends.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// hyper's read buffer per connection (bodies stream through it in pieces).
const READ_BUFFER: usize = 256 * 1024;
/// Read and written in pieces of this size, so a 16 MiB pack never sits whole in memory.
const CHUNK: usize = 64 * 1024;
/// restic's v2 listing (names with sizes), asked for in `Accept` and answered in kind.
const LIST_V2: &str = "application/vnd.x.restic.rest.v2";

/// What one run may do, and the login it proves it with.
pub struct Grant {
    /// The repository's folder on the disk.
    pub root: PathBuf,
    /// Forget, prune and key removal (the box's upkeep); backups and restores may not.
    pub may_remove: bool,
    pub user: String,
    pub password: Secret,
}

/// The kinds of files in a repository, as restic names its folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Data,
    Keys,
    Locks,
    Snapshots,
    Index,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Data,
        Kind::Keys,
        Kind::Locks,
        Kind::Snapshots,
        Kind::Index,
    ];

    fn folder(self) -> &'static str {
        match self {
            Kind::Data => "data",
            Kind::Keys => "keys",
            Kind::Locks => "locks",
            Kind::Snapshots => "snapshots",
            Kind::Index => "index",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.folder() == s)
    }
}

/// What a request is about.
#[derive(Debug, PartialEq, Eq)]
enum Place {
    /// `/`: the repository (`POST /?create=true` makes it).
    Root,
    Config,
    /// `/<kind>/`: the names in a folder.
    List(Kind),
    /// `/<kind>/<id>`.
    File(Kind, String),
}

/// A restic file name: the SHA-256 of its content, in lowercase hex. Nothing else is ever a
/// path on the disk.
fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn parse_place(path: &str) -> Option<Place> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        [""] => Some(Place::Root),
        ["config"] => Some(Place::Config),
        [kind] | [kind, ""] => Kind::parse(kind).map(Place::List),
        [kind, id] if is_id(id) => Kind::parse(kind).map(|k| Place::File(k, id.to_string())),
        _ => None,
    }
}

/// Where a file is on the disk (data files in a folder per first byte, as restic's local
/// layout has them).
fn file_path(root: &Path, kind: Kind, id: &str) -> PathBuf {
    match kind {
        Kind::Data => root.join("data").join(&id[..2]).join(id),
        _ => root.join(kind.folder()).join(id),
    }
}

/// One run's way to the disk: the port its device forwards back on an SSH connection of the
/// run's own, served here with a login made for this run alone, until the run ends. Dropped
/// (also when the run's future is, half-way), it stops every connection of the run and closes
/// that SSH connection, which ends the device's side.
pub struct Tunnel {
    pub port: u32,
    user: String,
    password: Secret,
    server: tokio::task::JoinHandle<()>,
    session: Arc<Session>,
}

impl Tunnel {
    pub fn start(session: Arc<Session>, mut forward: Forward, access: &DiskAccess) -> Tunnel {
        let password = crate::units::hex(&crate::secrets::random_bytes::<24>());
        let grant = Arc::new(Grant {
            root: access.root.clone(),
            may_remove: access.may_remove,
            user: "homelab".into(),
            password: Secret::from_string(password.clone()),
        });
        let server = tokio::spawn(async move {
            // Dropped with the task: every connection of the run ends with it.
            let mut connections = tokio::task::JoinSet::new();
            while let Some(stream) = forward.incoming.recv().await {
                while connections.try_join_next().is_some() {}
                if connections.len() >= MAX_CONNECTIONS {
                    continue; // dropped: restic carries on with the ones it has
                }
                connections.spawn(serve(stream, grant.clone()));
            }
        });
        Tunnel {
            port: forward.port,
            user: "homelab".into(),
            password: Secret::from_string(password),
            server,
            session,
        }
    }

    /// What the run on the device is given: the repository's password, and this tunnel as a
    /// REST server on the device's own loopback.
    pub fn credentials(&self, repository_password: &Secret) -> Credentials {
        Credentials {
            password: Secret::new(repository_password.expose().to_vec()),
            ssh: None,
            s3: None,
            rest: Some(RestLogin {
                url: format!("http://127.0.0.1:{}/", self.port),
                user: Secret::from_string(self.user.clone()),
                password: Secret::new(self.password.expose().to_vec()),
                certificate: String::new(),
            }),
            disk: None,
        }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.server.abort();
        let session = self.session.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            // Bounded: a connection a device stalled may never answer the goodbye.
            rt.spawn(async move {
                let _ = tokio::time::timeout(CLOSE_WAIT, session.close()).await;
            });
        }
    }
}

type Body = BoxBody<Bytes, io::Error>;

fn answer(code: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(text.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = code;
    r
}

/// Serves one connection of a run until restic hangs up (or the run ends and drops it).
pub async fn serve<S>(io: S, grant: Arc<Grant>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let grant = grant.clone();
        async move { Ok::<_, Infallible>(handle(&grant, req).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_WAIT)
        .max_buf_size(READ_BUFFER)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "a backup disk connection ended early");
    }
}

/// Whether the request carries the run's login (compared as digests, so the time taken says
/// nothing about how much of it was right).
fn authorized(grant: &Grant, req: &Request<Incoming>) -> bool {
    use base64::Engine;
    let Some(given) = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
    else {
        return false;
    };
    let mut expected = grant.user.as_bytes().to_vec();
    expected.push(b':');
    expected.extend_from_slice(grant.password.expose());
    let same = Sha256::digest(&given) == Sha256::digest(&expected);
    zeroize::Zeroize::zeroize(&mut expected);
    same
}

async fn handle(grant: &Grant, req: Request<Incoming>) -> Response<Body> {
    if !authorized(grant, &req) {
        let mut r = answer(StatusCode::UNAUTHORIZED, "login required");
        r.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Basic realm=\"homelab\""),
        );
        // Whoever does not have the run's login gets one answer per connection.
        r.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        return r;
    }
    let Some(place) = parse_place(req.uri().path()) else {
        return answer(StatusCode::NOT_FOUND, "no such place");
    };
    let root = grant.root.as_path();
    let method = req.method().clone();
    // Nothing on the disk leads elsewhere: a link planted there (to the box's own secrets,
    // say) is refused, wherever it sits under the repository's folder.
    let target = match &place {
        Place::Root | Place::List(_) => None,
        Place::Config => Some(root.join("config")),
        Place::File(kind, id) => Some(file_path(root, *kind, id)),
    };
    if let Some(t) = &target
        && let Err(e) = no_links(root, t)
    {
        tracing::warn!(error = %e, "refused a link on the backup disk");
        return answer(StatusCode::FORBIDDEN, "a link on the disk");
    }
    let result = match (&method, place) {
        (&Method::POST, Place::Root) => {
            if req.uri().query().is_some_and(|q| q.contains("create=true")) {
                create(root).await.map(|_| answer(StatusCode::OK, ""))
            } else {
                Ok(answer(StatusCode::BAD_REQUEST, "create=true expected"))
            }
        }
        (&Method::GET, Place::List(kind)) => list(root, kind, wants_v2(&req)).await,
        (&Method::HEAD | &Method::GET, Place::Config) => {
            read(&root.join("config"), &req, method == Method::HEAD).await
        }
        (&Method::HEAD | &Method::GET, Place::File(kind, id)) => {
            read(&file_path(root, kind, &id), &req, method == Method::HEAD).await
        }
        (&Method::POST, Place::Config) => save(&root.join("config"), None, req).await,
        (&Method::POST, Place::File(kind, id)) => {
            let path = file_path(root, kind, &id);
            save(&path, Some(id), req).await
        }
        // A run removes its own locks; only the box's upkeep removes backups or their data
        // (and never the repository's config).
        (&Method::DELETE, Place::File(kind, id)) if kind == Kind::Locks || grant.may_remove => {
            remove(&file_path(root, kind, &id)).await
        }
        (&Method::DELETE, _) => Ok(answer(
            StatusCode::FORBIDDEN,
            "this run may only add backups",
        )),
        _ => Ok(answer(StatusCode::METHOD_NOT_ALLOWED, "not here")),
    };
    result.unwrap_or_else(|e| {
        // A full disk has its own answer, which restic's message carries to the owner's
        // words ("the destination is full").
        if e.raw_os_error() == Some(nix::libc::ENOSPC) {
            answer(StatusCode::INSUFFICIENT_STORAGE, "no space left on device")
        } else if e.kind() == io::ErrorKind::NotFound {
            answer(StatusCode::NOT_FOUND, "not found")
        } else if e.kind() == io::ErrorKind::PermissionDenied {
            answer(StatusCode::FORBIDDEN, "refused")
        } else {
            tracing::warn!(error = %e, "the backup disk refused a request");
            answer(StatusCode::INTERNAL_SERVER_ERROR, "the disk refused it")
        }
    })
}

fn wants_v2(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(LIST_V2))
}

/// Refuses a path under `root` when the root, or anything between it and the path (the path
/// itself included), is a symbolic link. What does not exist yet is no link.
fn no_links(root: &Path, path: &Path) -> io::Result<()> {
    let link = || {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a symbolic link on the disk",
        )
    };
    let rel = path.strip_prefix(root).map_err(|_| link())?;
    let mut at = root.to_path_buf();
    for part in std::iter::once(None).chain(rel.components().map(Some)) {
        if let Some(p) = part {
            at.push(p);
        }
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return Err(link()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Makes the repository's folders (again, harmlessly, when they are there).
async fn create(root: &Path) -> io::Result<()> {
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || {
        for kind in Kind::ALL {
            std::fs::create_dir_all(root.join(kind.folder()))?;
        }
        for b in 0..=255u8 {
            std::fs::create_dir_all(root.join("data").join(format!("{b:02x}")))?;
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|e| Err(io::Error::other(e)))
}

/// The files of one kind with their sizes (v2), or their names (v1).
async fn list(root: &Path, kind: Kind, v2: bool) -> io::Result<Response<Body>> {
    let root = root.to_path_buf();
    let found = tokio::task::spawn_blocking(move || -> io::Result<Vec<(String, u64)>> {
        let base = root.join(kind.folder());
        let folders = if kind == Kind::Data {
            match std::fs::read_dir(&base) {
                Ok(entries) => entries
                    .filter_map(Result::ok)
                    // Folders only, never a link to one.
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .collect(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e),
            }
        } else {
            vec![base]
        };
        for folder in &folders {
            no_links(&root, folder)?;
        }
        let mut files = Vec::new();
        for folder in folders {
            let entries = match std::fs::read_dir(&folder) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().to_string();
                // Uploads still being written (`.upload-…`) and anything else are not ours.
                if !is_id(&name) {
                    continue;
                }
                // `DirEntry::metadata` does not follow links: a link is no file of ours.
                if let Ok(meta) = entry.metadata()
                    && meta.file_type().is_file()
                {
                    files.push((name, meta.len()));
                }
            }
        }
        Ok(files)
    })
    .await
    .unwrap_or_else(|e| Err(io::Error::other(e)))?;
    let (body, content_type) = if v2 {
        let items: Vec<serde_json::Value> = found
            .into_iter()
            .map(|(name, size)| serde_json::json!({"name": name, "size": size}))
            .collect();
        (serde_json::to_vec(&items).unwrap_or_default(), LIST_V2)
    } else {
        let names: Vec<String> = found.into_iter().map(|(n, _)| n).collect();
        (
            serde_json::to_vec(&names).unwrap_or_default(),
            "application/vnd.x.restic.rest.v1",
        )
    };
    let mut r = Response::new(Full::new(Bytes::from(body)).map_err(|n| match n {}).boxed());
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    Ok(r)
}

/// `Range: bytes=a-b` or `bytes=a-` (what restic asks for), as (start, length) within `size`.
fn range(header: Option<&str>, size: u64) -> Option<(u64, u64)> {
    let spec = header?.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end = match b.trim() {
        "" => size.checked_sub(1)?,
        b => b.parse::<u64>().ok()?.min(size.checked_sub(1)?),
    };
    (start <= end).then(|| (start, end - start + 1))
}

/// A file, whole or the range asked for, read as it is sent.
async fn read(path: &Path, req: &Request<Incoming>, head: bool) -> io::Result<Response<Body>> {
    // Never a link (checked above, and refused here again as it is opened), never a pipe or
    // device file that would hold the read forever: regular files only.
    let mut file = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .await?;
    let meta = file.metadata().await?;
    if !meta.is_file() {
        return Ok(answer(StatusCode::FORBIDDEN, "not a file"));
    }
    let size = meta.len();
    let asked = req
        .headers()
        .get(hyper::header::RANGE)
        .and_then(|v| v.to_str().ok());
    let (status, start, length) = match asked {
        None => (StatusCode::OK, 0, size),
        Some(h) => match range(Some(h), size) {
            Some((start, length)) => (StatusCode::PARTIAL_CONTENT, start, length),
            None => return Ok(answer(StatusCode::RANGE_NOT_SATISFIABLE, "bad range")),
        },
    };
    let body: Body = if head {
        Full::new(Bytes::new()).map_err(|n| match n {}).boxed()
    } else {
        file.seek(SeekFrom::Start(start)).await?;
        let chunks = futures_util::stream::unfold(
            (file.take(length), false),
            |(mut file, done)| async move {
                if done {
                    return None;
                }
                let mut buf = vec![0u8; CHUNK];
                match file.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(Frame::data(Bytes::from(buf))), (file, false)))
                    }
                    Err(e) => Some((Err(e), (file, true))),
                }
            },
        );
        BodyExt::boxed(StreamBody::new(chunks))
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(hyper::header::CONTENT_LENGTH, length.into());
    Ok(r)
}

/// Removes a half-written upload when the save did not finish.
struct Unfinished(Option<PathBuf>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Stores an upload: written beside its place under a temporary name, its content checked
/// against its name (`id`, the SHA-256 restic gave it), flushed to the disk, then put in place.
/// A file that is there already is never replaced (as rest-server: a backup cannot overwrite
/// what is stored).
async fn save(
    path: &Path,
    id: Option<String>,
    req: Request<Incoming>,
) -> io::Result<Response<Body>> {
    if stored(path).await? {
        return Ok(answer(StatusCode::FORBIDDEN, "already stored"));
    }
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_UPLOAD) {
        return Ok(answer(StatusCode::PAYLOAD_TOO_LARGE, "too large"));
    }
    let folder = path.parent().unwrap_or(Path::new("."));
    let temp = folder.join(format!(
        ".upload-{}",
        crate::units::hex(&crate::secrets::random_bytes::<8>())
    ));
    let mut guard = Unfinished(Some(temp.clone()));
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .await?;
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    let mut body = req.into_body().into_data_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(io::Error::other)?;
        written += chunk.len() as u64;
        if written > MAX_UPLOAD {
            return Ok(answer(StatusCode::PAYLOAD_TOO_LARGE, "too large"));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await?;
    }
    if let Some(id) = id
        && crate::units::hex(&hasher.finalize()) != id
    {
        return Ok(answer(
            StatusCode::BAD_REQUEST,
            "content does not match its name",
        ));
    }
    // On the disk before restic is told it is stored: a USB disk pulled right after must
    // not lose what a snapshot already counts on.
    file.sync_all().await?;
    drop(file);
    if stored(path).await? {
        return Ok(answer(StatusCode::FORBIDDEN, "already stored"));
    }
    tokio::fs::rename(&temp, path).await?;
    guard.0 = None;
    // The name in its folder on the disk too, before restic counts on it.
    tokio::fs::File::open(folder).await?.sync_all().await?;
    Ok(answer(StatusCode::OK, ""))
}

/// Something is at `path` already (a link counts, and is not followed).
async fn stored(path: &Path) -> io::Result<bool> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

async fn remove(path: &Path) -> io::Result<Response<Body>> {
    tokio::fs::remove_file(path).await?;
    Ok(answer(StatusCode::OK, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_restic_names_become_paths() {
        let id = "ab".repeat(32);
        assert_eq!(parse_place("/"), Some(Place::Root));
        assert_eq!(parse_place("/config"), Some(Place::Config));
        assert_eq!(parse_place("/data/"), Some(Place::List(Kind::Data)));
        assert_eq!(parse_place("/locks"), Some(Place::List(Kind::Locks)));
        assert_eq!(
            parse_place(&format!("/snapshots/{id}")),
            Some(Place::File(Kind::Snapshots, id.clone()))
        );
        for bad in [
            "/../etc/passwd",
            "/data/../../x",
            &format!("/data/{}", "AB".repeat(32)),
            &format!("/keys/{id}/x"),
            &format!("/other/{id}"),
            "/data/ab",
        ] {
            assert_eq!(parse_place(bad), None, "{bad}");
        }
        assert_eq!(
            file_path(Path::new("/d"), Kind::Data, &id),
            PathBuf::from(format!("/d/data/ab/{id}"))
        );
    }

    /// One HTTP exchange with a connection served for `grant` (real HTTP/1.1, through a
    /// pipe): status and body.
    async fn ask(
        grant: &Arc<Grant>,
        method: &str,
        path: &str,
        login: Option<(&str, &str)>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        use base64::Engine;
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(serve(theirs, grant.clone()));
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(ours))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut req = Request::builder().method(method).uri(path);
        if let Some((u, p)) = login {
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            req = req.header("authorization", format!("Basic {basic}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = send
            .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        drop(send);
        let _ = server.await;
        (status, body)
    }

    fn grant(root: &Path, may_remove: bool) -> Arc<Grant> {
        Arc::new(Grant {
            root: root.to_path_buf(),
            may_remove,
            user: "homelab".into(),
            password: Secret::from_string("run-password".into()),
        })
    }

    #[tokio::test]
    async fn a_backup_run_adds_and_reads_but_never_removes_and_the_box_may() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let run = grant(&root, false);
        let login = Some(("homelab", "run-password"));
        // Without the run's login, or with another: nothing.
        assert_eq!(
            ask(&run, "POST", "/?create=true", None, &[], vec![])
                .await
                .0,
            401
        );
        let wrong = Some(("homelab", "guess"));
        assert_eq!(
            ask(&run, "POST", "/?create=true", wrong, &[], vec![])
                .await
                .0,
            401
        );
        assert!(!root.exists());
        assert_eq!(
            ask(&run, "POST", "/?create=true", login, &[], vec![])
                .await
                .0,
            200
        );
        assert!(root.join("data/ff").is_dir() && root.join("locks").is_dir());

        // A file stored under its content's SHA-256; another name is refused; stored files
        // are never replaced.
        let content = b"some pack data".to_vec();
        let id = crate::units::hex(&Sha256::digest(&content));
        let at = format!("/data/{id}");
        let bad = format!("/data/{}", "0".repeat(64));
        assert_eq!(
            ask(&run, "POST", &bad, login, &[], content.clone()).await.0,
            400
        );
        assert_eq!(
            ask(&run, "POST", &at, login, &[], content.clone()).await.0,
            200
        );
        assert_eq!(
            ask(&run, "POST", &at, login, &[], content.clone()).await.0,
            403
        );
        assert_eq!(
            std::fs::read(root.join("data").join(&id[..2]).join(&id)).unwrap(),
            content
        );
        let leftovers: Vec<_> = std::fs::read_dir(root.join("data").join(&id[..2]))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no upload left behind: {leftovers:?}");

        // Read whole, in part, listed with sizes (v2) or names (v1).
        assert_eq!(
            ask(&run, "GET", &at, login, &[], vec![]).await,
            (200, content.clone())
        );
        assert_eq!(
            ask(&run, "GET", &at, login, &[("range", "bytes=5-8")], vec![]).await,
            (206, b"pack".to_vec())
        );
        let (status, listed) =
            ask(&run, "GET", "/data/", login, &[("accept", LIST_V2)], vec![]).await;
        assert_eq!(status, 200);
        let listed: serde_json::Value = serde_json::from_slice(&listed).unwrap();
        assert_eq!(
            listed,
            serde_json::json!([{"name": id, "size": content.len()}])
        );
        let (_, names) = ask(&run, "GET", "/data/", login, &[], vec![]).await;
        assert_eq!(
            serde_json::from_slice::<Vec<String>>(&names).unwrap(),
            vec![id.clone()]
        );
        assert_eq!(
            ask(&run, "HEAD", &format!("/keys/{id}"), login, &[], vec![])
                .await
                .0,
            404
        );

        // A run removes its own lock, never data, snapshots or the config.
        let lock = b"lock".to_vec();
        let lock_id = crate::units::hex(&Sha256::digest(&lock));
        let lock_at = format!("/locks/{lock_id}");
        assert_eq!(ask(&run, "POST", &lock_at, login, &[], lock).await.0, 200);
        assert_eq!(
            ask(&run, "DELETE", &lock_at, login, &[], vec![]).await.0,
            200
        );
        assert_eq!(ask(&run, "DELETE", &at, login, &[], vec![]).await.0, 403);
        assert_eq!(
            ask(&run, "POST", "/config", login, &[], b"c".to_vec())
                .await
                .0,
            200
        );
        assert_eq!(
            ask(&run, "DELETE", "/config", login, &[], vec![]).await.0,
            403
        );
        assert!(root.join("data").join(&id[..2]).join(&id).is_file());

        // The box's upkeep may.
        let upkeep = grant(&root, true);
        assert_eq!(ask(&upkeep, "DELETE", &at, login, &[], vec![]).await.0, 200);
        assert!(!root.join("data").join(&id[..2]).join(&id).exists());
        // Nothing outside the repository is ever a path.
        assert_eq!(
            ask(&upkeep, "GET", "/../../etc/passwd", login, &[], vec![])
                .await
                .0,
            404
        );

        // Links planted on the disk lead nowhere: a file, a folder of restic's, a data folder.
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"the box's key").unwrap();
        std::fs::remove_file(root.join("config")).unwrap();
        std::os::unix::fs::symlink(&secret, root.join("config")).unwrap();
        let (status, body) = ask(&run, "GET", "/config", login, &[], vec![]).await;
        assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::remove_dir(root.join("keys")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("keys")).unwrap();
        let key = format!("/keys/{id}");
        assert_eq!(
            ask(&run, "POST", &key, login, &[], content.clone()).await.0,
            403
        );
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        assert_eq!(ask(&run, "GET", "/keys/", login, &[], vec![]).await.0, 403);
        std::fs::remove_dir(root.join("data").join(&id[..2])).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("data").join(&id[..2])).unwrap();
        std::fs::write(elsewhere.join(&id), &content).unwrap();
        assert_eq!(ask(&run, "GET", &at, login, &[], vec![]).await.0, 403);
        let (_, listed) = ask(&run, "GET", "/data/", login, &[("accept", LIST_V2)], vec![]).await;
        assert_eq!(listed, b"[]", "a linked data folder is not listed");
    }

    #[test]
    fn ranges_as_restic_asks() {
        assert_eq!(range(Some("bytes=0-9"), 100), Some((0, 10)));
        assert_eq!(range(Some("bytes=90-"), 100), Some((90, 10)));
        assert_eq!(range(Some("bytes=90-200"), 100), Some((90, 10)));
        assert_eq!(range(Some("bytes=100-"), 100), None);
        assert_eq!(range(Some("bytes=5-1"), 100), None);
        assert_eq!(range(Some("lines=1-2"), 100), None);
    }
}
