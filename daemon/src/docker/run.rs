//! One-off containers on a device: created, fed secrets on stdin, followed line by line while
//! they run (or their output handed over as bytes: `run_streaming`, for a file out of a
//! backup), and removed when they end (the backups' restic runs). Secrets never appear in
//! the container's configuration (what `docker inspect` shows), only on its stdin.

use std::collections::HashMap;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::{Docker, DockerError};

/// Longest line kept from a container's output; longer ones are cut. restic's status lines
/// are a few hundred bytes, but `snapshots --json` is one line for all of them (~350 bytes
/// each): room for ten thousand.
const MAX_LINE: usize = 4 << 20;
/// Longest standard-error line kept for a message.
const MAX_ERR_LINE: usize = 1024;
/// Lines of standard error kept for the error message (the last ones say why).
const STDERR_LINES: usize = 40;

/// What to run. Names, images and paths come from validated slugs and fixed strings.
#[derive(Debug, Clone, Default)]
pub struct OneOff {
    /// The container's name: one such container per purpose on a device, so a run left by a
    /// dead daemon is found and removed before the next one starts.
    pub name: String,
    pub image: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `volume:/path[:ro]`.
    pub binds: Vec<String>,
    /// Paths mounted as memory-only file systems (where secrets may be written as files).
    pub tmpfs: Vec<String>,
    /// Plain settings only; secrets go on stdin.
    pub env: Vec<String>,
    pub labels: HashMap<String, String>,
    /// A network to join instead of the engine's default one.
    pub network: Option<String>,
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// How a one-off container ended.
#[derive(Debug, Clone, Default)]
pub struct Ended {
    /// None when it outran its deadline (it was killed).
    pub exit_code: Option<i64>,
    /// Its last lines of standard error.
    pub stderr_tail: Vec<String>,
}

impl Ended {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// Runs `spec` to its end: writes `stdin` and closes it, hands every output line to `on_line`,
/// and removes the container afterwards, also when it outran `deadline` (then killed).
pub async fn run(
    docker: &Docker,
    spec: &OneOff,
    stdin: &[u8],
    deadline: Duration,
    mut on_line: impl FnMut(Stream, &str),
) -> Result<Ended, DockerError> {
    create(docker, spec).await?;
    let outcome = tokio::time::timeout(deadline, follow(docker, spec, stdin, &mut on_line)).await;
    let ended = match outcome {
        Ok(Ok(ended)) => Ok(ended),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            let _ = docker
                .kill_container(
                    &spec.name,
                    Some(
                        KillContainerOptionsBuilder::default()
                            .signal("KILL")
                            .build(),
                    ),
                )
                .await;
            Ok(Ended::default())
        }
    };
    remove(docker, &spec.name).await;
    ended
}

/// Makes the container of `spec`, removing first one of the same name (a run that never
/// finished: the daemon stopped under it).
async fn create(docker: &Docker, spec: &OneOff) -> Result<(), DockerError> {
    remove(docker, &spec.name).await;
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: Some(spec.entrypoint.clone()),
        cmd: Some(spec.cmd.clone()),
        env: Some(spec.env.clone()),
        labels: Some(spec.labels.clone()),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        // The engine closes the container's stdin when we close ours.
        stdin_once: Some(true),
        tty: Some(false),
        host_config: Some(HostConfig {
            binds: Some(spec.binds.clone()),
            tmpfs: Some(
                spec.tmpfs
                    .iter()
                    .map(|p| (p.clone(), "rw,noexec,nosuid,size=1m,mode=0700".to_string()))
                    .collect(),
            ),
            network_mode: spec.network.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_container(
            Some(
                CreateContainerOptionsBuilder::default()
                    .name(&spec.name)
                    .build(),
            ),
            body,
        )
        .await?;
    Ok(())
}

/// Attaches, starts, feeds stdin and reads every line until the container exits.
async fn follow(
    docker: &Docker,
    spec: &OneOff,
    stdin: &[u8],
    on_line: &mut impl FnMut(Stream, &str),
) -> Result<Ended, DockerError> {
    // Attached before it starts, so no output is missed.
    let attached = attach(docker, &spec.name).await?;
    let (mut output, mut input) = (attached.output, attached.input);
    docker.start_container(&spec.name, None).await?;
    input.write_all(stdin).await?;
    input.flush().await?;
    let _ = input.shutdown().await;
    let mut ended = Ended::default();
    let (mut out_buf, mut err_buf) = (Vec::new(), Vec::new());
    while let Some(chunk) = output.next().await {
        let (stream, bytes, buf) = match chunk? {
            bollard::container::LogOutput::StdOut { message } => {
                (Stream::Out, message, &mut out_buf)
            }
            bollard::container::LogOutput::StdErr { message } => {
                (Stream::Err, message, &mut err_buf)
            }
            _ => continue,
        };
        // Only the new bytes are searched for line ends (a long line arriving in small
        // pieces costs no more than reading it once).
        let scanned = buf.len();
        buf.extend_from_slice(&bytes);
        if let Some(last) = buf[scanned..].iter().rposition(|b| *b == b'\n') {
            let whole: Vec<u8> = buf.drain(..=scanned + last).collect();
            for line in whole[..whole.len() - 1].split(|b| *b == b'\n') {
                emit(stream, line, on_line, &mut ended);
            }
        }
        if buf.len() > MAX_LINE {
            let line: Vec<u8> = std::mem::take(buf);
            emit(stream, &line[..MAX_LINE], on_line, &mut ended);
        }
    }
    for (stream, rest) in [(Stream::Out, out_buf), (Stream::Err, err_buf)] {
        if !rest.is_empty() {
            emit(stream, &rest, on_line, &mut ended);
        }
    }
    let inspected = docker
        .inspect_container(
            &spec.name,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await?;
    ended.exit_code = inspected.state.and_then(|s| s.exit_code);
    Ok(ended)
}

fn emit(stream: Stream, bytes: &[u8], on_line: &mut impl FnMut(Stream, &str), ended: &mut Ended) {
    let line = String::from_utf8_lossy(bytes);
    if stream == Stream::Err && !line.trim().is_empty() {
        if ended.stderr_tail.len() == STDERR_LINES {
            ended.stderr_tail.remove(0);
        }
        ended
            .stderr_tail
            .push(line.chars().take(MAX_ERR_LINE).collect());
    }
    on_line(stream, &line);
}

/// How far a streamed one-off container may go (`run_streaming`).
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Stopped (killed and removed) when it runs longer than this.
    pub deadline: Duration,
    /// Stopped when the reader takes no chunk for this long (a browser that went away
    /// without closing its connection).
    pub stall: Duration,
    /// Chunks of output held for the reader at most (each up to the engine's frame, ~32 KiB).
    pub bound: usize,
}

/// A one-off container whose standard output is handed over as raw bytes while it runs.
pub struct Streaming {
    /// Its standard output in order, as the engine sends it; ends when the output ends or the
    /// container was stopped. Holds at most `StreamLimits::bound` chunks: while the reader
    /// takes none, the container's output is not read either, so a slow reader slows the
    /// container down instead of filling the box's memory.
    pub out: mpsc::Receiver<Bytes>,
    /// How it ended, once it is removed. `exit_code` is None when it was stopped: the reader
    /// dropped `out`, stalled, or the deadline passed.
    pub ended: tokio::task::JoinHandle<Result<Ended, DockerError>>,
}

/// Starts `spec`, writes `stdin` and closes it, and hands its standard output over as it
/// comes (binary output: `run` reads lines). The container is removed when it ends, when it
/// outruns the deadline, when the reader stalls, and as soon as the reader drops `out`.
///
/// `control` makes, starts, inspects and removes the container; `reader` attaches to its
/// output. When the reader may be slow, give `reader` a connection of its own: an SSH
/// connection with a channel nobody reads stalls as a whole (russh hands channel data over
/// through a bounded queue inside its connection task), and `control` must still answer to
/// remove the container.
pub async fn run_streaming(
    control: &Docker,
    reader: &Docker,
    spec: &OneOff,
    stdin: &[u8],
    limits: StreamLimits,
) -> Result<Streaming, DockerError> {
    create(control, spec).await?;
    let started = async {
        // Attached before it starts, so no output is missed.
        let attached = attach(reader, &spec.name).await?;
        let (output, mut input) = (attached.output, attached.input);
        control.start_container(&spec.name, None).await?;
        input.write_all(stdin).await?;
        input.flush().await?;
        let _ = input.shutdown().await;
        Ok::<_, DockerError>(output)
    };
    let output = match tokio::time::timeout(limits.deadline, started).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => {
            remove(control, &spec.name).await;
            return Err(e);
        }
        Err(_) => {
            remove(control, &spec.name).await;
            return Ok(Streaming {
                out: mpsc::channel(1).1,
                ended: tokio::spawn(async { Ok(Ended::default()) }),
            });
        }
    };
    let (tx, out) = mpsc::channel(limits.bound.max(1));
    let deadline = tokio::time::Instant::now() + limits.deadline;
    let (control, name) = (control.clone(), spec.name.clone());
    let ended = tokio::spawn(async move {
        let pumped = pump(output, &tx, deadline, limits.stall).await;
        drop(tx);
        let ended = match pumped {
            Ok(Some(mut ended)) => control
                .inspect_container(
                    &name,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
                .map(|inspected| {
                    ended.exit_code = inspected.state.and_then(|s| s.exit_code);
                    ended
                })
                .map_err(DockerError::from),
            Ok(None) => Ok(Ended::default()),
            Err(e) => Err(e),
        };
        // Killed first when still running.
        remove(&control, &name).await;
        ended
    });
    Ok(Streaming { out, ended })
}

/// Hands the container's standard output to `tx` until it ends (Some: what standard error
/// said) or must stop (None: the reader went away or stalled, or the deadline passed).
async fn pump(
    mut output: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
    >,
    tx: &mpsc::Sender<Bytes>,
    deadline: tokio::time::Instant,
    stall: Duration,
) -> Result<Option<Ended>, DockerError> {
    let mut ended = Ended::default();
    let mut err_buf: Vec<u8> = Vec::new();
    let mut no_lines = |_: Stream, _: &str| {};
    loop {
        let chunk = tokio::select! {
            chunk = output.next() => chunk,
            () = tx.closed() => return Ok(None),
            () = tokio::time::sleep_until(deadline) => return Ok(None),
        };
        match chunk.transpose()? {
            None => break,
            Some(LogOutput::StdOut { message }) => {
                let give_up = deadline.min(tokio::time::Instant::now() + stall);
                match tokio::time::timeout_at(give_up, tx.send(message)).await {
                    Ok(Ok(())) => {}
                    // Dropped, or not read in time.
                    Ok(Err(_)) | Err(_) => return Ok(None),
                }
            }
            Some(LogOutput::StdErr { message }) => {
                err_buf.extend_from_slice(&message);
                while let Some(end) = err_buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = err_buf.drain(..=end).collect();
                    emit(Stream::Err, &line[..end], &mut no_lines, &mut ended);
                }
                if err_buf.len() > MAX_ERR_LINE {
                    let line = std::mem::take(&mut err_buf);
                    emit(
                        Stream::Err,
                        &line[..MAX_ERR_LINE],
                        &mut no_lines,
                        &mut ended,
                    );
                }
            }
            Some(_) => {}
        }
    }
    if !err_buf.is_empty() {
        emit(Stream::Err, &err_buf, &mut no_lines, &mut ended);
    }
    Ok(Some(ended))
}

/// Removes a container, running or not (nothing if there is none).
pub async fn remove(docker: &Docker, name: &str) {
    let _ = docker
        .remove_container(
            name,
            Some(
                RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .v(true)
                    .build(),
            ),
        )
        .await;
}

/// Makes a volume (with labels) unless it exists.
pub async fn create_volume(
    docker: &Docker,
    name: &str,
    labels: HashMap<String, String>,
) -> Result<(), DockerError> {
    docker
        .create_volume(bollard::models::VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        })
        .await?;
    Ok(())
}

/// Whether a volume exists.
pub async fn volume_exists(docker: &Docker, name: &str) -> Result<bool, DockerError> {
    match docker.inspect_volume(name).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Removes every container labelled `label` (running ones are killed) whose `owner_label` is
/// not `owner`: one-off runs a daemon left behind when it stopped under them. Returns how many.
pub async fn remove_left_over(
    docker: &Docker,
    label: &str,
    owner_label: &str,
    owner: &str,
) -> Result<usize, DockerError> {
    let list = docker
        .list_containers(Some(bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![label.to_string()],
            )])),
            ..Default::default()
        }))
        .await?;
    let mut removed = 0;
    for c in list {
        let mine = c
            .labels
            .as_ref()
            .and_then(|l| l.get(owner_label))
            .is_some_and(|o| o == owner);
        if mine {
            continue;
        }
        if let Some(id) = c.id {
            remove(docker, &id).await;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Attaches to a one-off container's stdin, stdout and stderr (before it starts).
async fn attach(
    docker: &Docker,
    name: &str,
) -> Result<bollard::container::AttachContainerResults, DockerError> {
    let options = AttachContainerOptionsBuilder::default()
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .stream(true)
        .build();
    Ok(docker.attach_container(name, Some(options)).await?)
}
