//! The `homelabd` binary: parses arguments and dispatches to the library. Nothing else.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use homelabd::telemetry::{self, LogFormat};
use homelabd::{Config, Listeners};

#[derive(Parser)]
#[command(name = "homelabd", version = homelabd::VERSION, about = "Homelab: your whole homelab as one system")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Address for plain HTTP.
    #[arg(
        long,
        env = "HOMELAB_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    listen: SocketAddr,
    /// Address for HTTPS (e.g. 0.0.0.0:443 on the appliance); off when not given.
    #[arg(long, env = "HOMELAB_TLS_LISTEN", global = true)]
    tls_listen: Option<SocketAddr>,
    /// Data directory: database, vault key, certificate.
    #[arg(
        long = "data",
        env = "HOMELAB_DATA",
        default_value = "./data",
        global = true
    )]
    data: PathBuf,
    /// Seconds between health checks of every device.
    #[arg(long, env = "HOMELAB_POLL_INTERVAL", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    poll_interval: u64,
    /// Announce homelab.local on the LAN over mDNS. Off by default so a development daemon never
    /// claims the name of a real box on the same network; the appliance turns it on.
    #[arg(long, env = "HOMELAB_MDNS", value_enum, default_value_t = Switch::Off, global = true)]
    mdns: Switch,
    /// Interfaces for mDNS (comma-separated); default: every non-virtual interface.
    #[arg(
        long = "mdns-interface",
        env = "HOMELAB_MDNS_INTERFACES",
        value_delimiter = ',',
        global = true
    )]
    mdns_interfaces: Vec<String>,
    /// Folder on each device that holds one folder per deployed app.
    #[arg(long, env = "HOMELAB_APPS_DIR", default_value = homelabd::config::DEFAULT_APPS_DIR, global = true)]
    apps_dir: String,
    /// Seconds a newly started app gets to answer its health check before it is rolled back.
    #[arg(long, env = "HOMELAB_HEALTH_TIMEOUT", default_value_t = 180, value_parser = clap::value_parser!(u64).range(5..=3600), global = true)]
    health_timeout: u64,
    /// Scheduled backups: on, or off (Back up now still works; for demos and tests that must
    /// not meet a backup at 02:00).
    #[arg(long, env = "HOMELAB_BACKUP_SCHEDULE", value_enum, default_value_t = Switch::On, global = true)]
    backup_schedule: Switch,
    /// The restic program the box runs for its own backup, and to restore onto a new box.
    #[arg(long, env = "HOMELAB_RESTIC", default_value = "restic", global = true)]
    restic: PathBuf,
    /// The RAUC tool that installs appliance updates.
    #[arg(long, env = "HOMELAB_RAUC", default_value = "rauc", global = true)]
    rauc: PathBuf,
    /// File whose creation asks the system to restart (the appliance's homelab-reboot.path).
    #[arg(
        long,
        env = "HOMELAB_REBOOT_REQUEST",
        default_value = "/run/homelabd/reboot",
        global = true
    )]
    reboot_request: PathBuf,
    /// Certificate authorities trusted for https update channels (a PEM bundle).
    #[arg(
        long,
        env = "HOMELAB_CA_CERTS",
        default_value = "/etc/ssl/certs/ca-certificates.crt",
        global = true
    )]
    ca_certs: PathBuf,
    /// Updates from the channel: streamed by RAUC (on), so only what changed is downloaded, or
    /// downloaded whole first (off; for a RAUC built without streaming).
    #[arg(long, env = "HOMELAB_OTA_STREAM", value_enum, default_value_t = Switch::Off, global = true)]
    ota_stream: Switch,
    /// Log format.
    #[arg(long, env = "HOMELAB_LOG_FORMAT", value_enum, default_value_t = Format::Text, global = true)]
    log_format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Switch {
    On,
    Off,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Run,
    /// Exit 0 when the local server answers /healthz.
    Healthcheck,
    /// Print the version.
    Version,
    /// Print the setup code needed to claim this box after the open setup window.
    SetupCode,
    /// Print the console banner: addresses, certificate fingerprint, setup code (appliance).
    ConsoleBanner,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = cli.run;
    match cli.command.unwrap_or(Command::Run) {
        Command::Version => {
            println!("homelabd {}", homelabd::VERSION);
            ExitCode::SUCCESS
        }
        Command::Healthcheck => match homelabd::web::healthcheck(args.listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("homelabd is not healthy: {e}");
                ExitCode::FAILURE
            }
        },
        Command::SetupCode => {
            telemetry::init_quiet();
            let config = config(&args);
            match runtime().and_then(|rt| {
                rt.block_on(homelabd::setup_code(config))
                    .map_err(|e| e.to_string())
            }) {
                Ok(Some(code)) => {
                    println!("{code}");
                    ExitCode::SUCCESS
                }
                Ok(None) => {
                    eprintln!("This homelab is already set up; sign in with the admin account.");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::ConsoleBanner => {
            telemetry::init_quiet();
            let config = config(&args);
            match runtime().and_then(|rt| {
                rt.block_on(homelabd::console_banner(config))
                    .map_err(|e| e.to_string())
            }) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run => {
            telemetry::init(match args.log_format {
                Format::Text => LogFormat::Text,
                Format::Json => LogFormat::Json,
            });
            match runtime().and_then(|rt| rt.block_on(serve(args))) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("homelabd could not run: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn config(args: &RunArgs) -> Config {
    let mut c = Config::new(&args.data);
    c.https_redirect_port = args.tls_listen.map(|a| a.port());
    c.poll_interval = std::time::Duration::from_secs(args.poll_interval);
    c.mdns = args.mdns == Switch::On;
    c.mdns_interfaces = (!args.mdns_interfaces.is_empty()).then(|| args.mdns_interfaces.clone());
    c.deploy = homelabd::config::DeployConfig {
        apps_dir: args.apps_dir.clone(),
        health_timeout: std::time::Duration::from_secs(args.health_timeout),
        backup_schedule_after: (args.backup_schedule == Switch::On)
            .then_some(std::time::Duration::from_secs(120)),
        ..Default::default()
    };
    c.restic = args.restic.clone();
    c.ota = homelabd::config::OtaConfig {
        rauc: args.rauc.clone(),
        reboot_request: args.reboot_request.clone(),
        ca_certs: args.ca_certs.clone(),
        stream: args.ota_stream == Switch::On,
    };
    c
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Blocking work here is the database (one writer, one reader), password hashes (bounded
        // by their own queue) and a network scan: 16 threads are plenty, where tokio's default
        // of 512 lets a burst of requests park hundreds of threads, each with its own stack and,
        // with glibc, possibly its own malloc arena that keeps memory after the burst.
        .max_blocking_threads(16)
        .build()
        .map_err(|e| e.to_string())
}

async fn serve(args: RunArgs) -> Result<(), String> {
    let bind = |addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))
    };
    loop {
        let http = bind(args.listen).await?;
        let https = match args.tls_listen {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        let stopped =
            homelabd::run_once(config(&args), Listeners { http, https }, shutdown_signal())
                .await
                .map_err(|e| e.to_string())?;
        // Stopped to put a restored state in place: start again, in the same process (so a
        // supervisor, or a terminal, sees one daemon throughout).
        if stopped != homelabd::Stopped::Restart {
            return Ok(());
        }
    }
}

/// Resolves on SIGTERM (systemd stop) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
