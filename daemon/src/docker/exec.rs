//! Running a command inside a container through the Docker API's exec, with bytes on its
//! stdin: how Homelab talks to its shared databases (SQL and secrets travel on stdin, so they
//! never appear in a process's arguments on the device, in `docker inspect`, or in logs).

use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::{Docker, DockerError};

/// What an exec printed (each stream bounded by `max_output`) and how it ended.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    /// None when the engine did not say (the process was still running at the deadline).
    pub exit_code: Option<i64>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// Runs `cmd` as `user` in `container`, writes `stdin` to it and closes it, and reads its
/// output until it ends or `timeout` passes (a hung process is then left to the engine: the
/// caller reports the timeout). Output beyond `max_output` bytes per stream is dropped.
pub async fn run(
    docker: &Docker,
    container: &str,
    user: &str,
    cmd: &[&str],
    stdin: &[u8],
    timeout: Duration,
    max_output: usize,
) -> Result<ExecOutput, DockerError> {
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(false),
                user: Some(user),
                cmd: Some(cmd.to_vec()),
                ..Default::default()
            },
        )
        .await?;
    let started = docker
        .start_exec(
            &created.id,
            Some(StartExecOptions {
                detach: false,
                tty: false,
                output_capacity: None,
            }),
        )
        .await?;
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = started
    else {
        return Err(DockerError::Refused("the exec did not attach".into()));
    };
    let mut out = ExecOutput::default();
    let talk = async {
        // Written and closed before reading: the commands Homelab runs read all of stdin
        // first, and the engine buffers their output meanwhile.
        input.write_all(stdin).await?;
        input.flush().await?;
        let _ = input.shutdown().await;
        while let Some(chunk) = output.next().await {
            match chunk? {
                bollard::container::LogOutput::StdOut { message } => {
                    push_bounded(&mut out.stdout, &message, max_output)
                }
                bollard::container::LogOutput::StdErr { message } => {
                    push_bounded(&mut out.stderr, &message, max_output)
                }
                _ => {}
            }
        }
        Ok::<(), DockerError>(())
    };
    match tokio::time::timeout(timeout, talk).await {
        Ok(r) => r?,
        Err(_) => return Ok(out),
    }
    out.exit_code = docker.inspect_exec(&created.id).await?.exit_code;
    Ok(out)
}

impl From<std::io::Error> for DockerError {
    fn from(e: std::io::Error) -> Self {
        DockerError::Refused(format!("the exec stream broke: {e}"))
    }
}

fn push_bounded(to: &mut String, bytes: &[u8], max: usize) {
    let room = max.saturating_sub(to.len());
    if room > 0 {
        let take = &bytes[..bytes.len().min(room)];
        to.push_str(&String::from_utf8_lossy(take));
    }
}
