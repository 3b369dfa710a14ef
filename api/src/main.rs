//! `wuye`: serve | migrate | seed-demo | bootstrap | simulate-devices | export-schema (with the
//! persisted-operation manifests) | config-reference

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::sync::watch;
use wuye_api::app::{self, App};
use wuye_api::kit::config::Config;

/// mimalloc: the server allocates many small, short-lived objects per request; glibc's
/// malloc showed up at ~12% of the profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "wuye", version, about = "wuye 物业 — smart property management server")]
struct Cli {
    /// TOML configuration file (WUYE_* environment variables override it)
    #[arg(long, short, env = "WUYE_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the GraphQL API (and the playground at /graphql)
    Serve,
    /// Apply database migrations
    Migrate,
    /// Create the demo estate and logins (development only; idempotent)
    SeedDemo,
    /// Create a company with its built-in roles and a first administrator
    Bootstrap {
        #[arg(long)]
        company: String,
        /// the company's short code, unique on this server (device topics and broker
        /// usernames start with it); generated when absent
        #[arg(long)]
        code: Option<String>,
        #[arg(long, default_value = "admin")]
        admin_username: String,
    },
    /// Publish realistic telemetry for the ledger's devices to the broker (demo, load tests)
    SimulateDevices {
        /// only devices of these projects (codes); default: every project
        #[arg(long)]
        project: Vec<String>,
        /// at most this many devices
        #[arg(long, default_value_t = 10_000)]
        devices: usize,
        /// messages per second over all devices (0: as fast as possible)
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// stop after this many messages
        #[arg(long, default_value_t = 1_000)]
        count: u64,
        /// share of messages that are fault events (0…1)
        #[arg(long, default_value_t = 0.0)]
        faults: f64,
        /// this many devices go offline and stay silent
        #[arg(long, default_value_t = 0)]
        offline: usize,
        #[arg(long, default_value_t = 2)]
        connections: usize,
        /// a JSON file of device broker accounts (`{"JCWY/JC-ELV-11": "password", …}`, as
        /// `provisionDeviceCredentials` gave them): each device then connects with its own
        #[arg(long)]
        credentials: Option<PathBuf>,
    },
    /// Write the GraphQL schema (SDL)
    ExportSchema {
        #[arg(default_value = "schema/schema.graphql")]
        out: PathBuf,
    },
    /// Write the configuration reference (every setting, its variable and meaning)
    ConfigReference {
        #[arg(default_value = "deploy/CONFIGURATION.md")]
        out: PathBuf,
    },
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Config(#[from] wuye_api::kit::config::ConfigError),
    #[error(transparent)]
    Startup(#[from] app::StartupError),
    #[error(transparent)]
    App(#[from] wuye_api::kit::error::AppError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Refused(&'static str),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::ConfigReference { out } = &cli.cmd {
        return match std::fs::write(out, wuye_api::kit::config::reference()) {
            Ok(()) => {
                println!("wrote {}", out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("wuye: cannot write {}: {e}", out.display());
                ExitCode::FAILURE
            }
        };
    }
    if let Cmd::ExportSchema { out } = &cli.cmd {
        return match export_schema(out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wuye: cannot write {}: {e}", out.display());
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wuye: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _telemetry = match wuye_api::app::telemetry::init(&config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("wuye: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wuye: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wuye: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the SDL, creating the folders on the way.
fn export_schema(out: &std::path::Path) -> std::io::Result<()> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, wuye_api::http::sdl())?;
    println!("wrote {}", out.display());
    // beside the schema: the apps' operations, and their persisted-operation manifests
    let dir = out.parent().unwrap_or(std::path::Path::new("."));
    let ops = dir.join("operations");
    if ops.is_dir() {
        std::fs::create_dir_all(dir.join("persisted"))?;
        for (file, _, folders) in wuye_api::http::persisted::MANIFESTS {
            let manifest = wuye_api::http::persisted::build_manifest(&ops, folders).map_err(std::io::Error::other)?;
            let path = dir.join("persisted").join(format!("{file}.json"));
            let mut json = serde_json::to_string_pretty(&manifest).map_err(std::io::Error::other)?;
            json.push('\n');
            std::fs::write(&path, json)?;
            println!("wrote {} ({} operations)", path.display(), manifest.operations.len());
        }
    }
    Ok(())
}

async fn run(cli: Cli, config: Config) -> Result<(), CliError> {
    match cli.cmd {
        Cmd::Migrate => {
            let db = app::connect_db_for_migrations(&config).await?;
            app::migrate(&db).await?;
            println!("migrations applied");
        }
        Cmd::SeedDemo => {
            if !config.is_development() {
                return Err(CliError::Refused("seed-demo runs only with WUYE_ENV=development"));
            }
            let app = App::build_default(config).await?;
            let logins = wuye_api::onboarding::seed::seed_demo(&app.state, true).await?;
            println!("{logins}");
        }
        Cmd::Bootstrap { company, code, admin_username } => {
            let app = App::build_default(config).await?;
            let password =
                wuye_api::onboarding::bootstrap(&app.state, &company, code.as_deref(), &admin_username).await?;
            println!(
                "company {company:?} created; sign in as {admin_username} with initial password {password} (must be changed at first sign-in)"
            );
        }
        Cmd::SimulateDevices { project, devices, rate, count, faults, offline, connections, credentials } => {
            if !(0.0..=1.0).contains(&faults) || !rate.is_finite() || rate < 0.0 {
                return Err(CliError::Refused("--faults is 0…1 and --rate at least 0"));
            }
            let db = app::connect_db(&config).await?;
            let list = wuye_api::iot::sim::service::devices(&db, &project, devices as i64).await?;
            if list.is_empty() {
                return Err(CliError::Refused("no devices in the ledger (run seed-demo first)"));
            }
            println!("simulating {} devices, {count} messages at {rate}/s → {}", list.len(), config.mqtt_url);
            let credentials = match credentials {
                Some(f) => serde_json::from_str(&std::fs::read_to_string(f)?)
                    .map_err(|_| CliError::Refused("--credentials: a JSON object of username → password"))?,
                None => Default::default(),
            };
            let report = wuye_api::iot::sim::service::simulate(wuye_api::iot::sim::model::SimOptions {
                mqtt_url: config.mqtt_url.clone(),
                ca_file: config.mqtt_ca_file.clone(),
                credentials,
                root: config.mqtt_topic_root.clone(),
                devices: list,
                rate,
                count,
                fault_rate: faults,
                offline,
                connections,
            })
            .await
            .map_err(|e| CliError::Io(std::io::Error::other(e)))?;
            let secs = report.elapsed.as_secs_f64();
            println!(
                "sent {} messages ({} faults) in {secs:.1} s: {:.0} msg/s",
                report.sent,
                report.faults,
                report.sent as f64 / secs.max(1e-9)
            );
        }
        Cmd::Serve => {
            let addr = config.http_addr;
            config.check_listen(addr)?;
            let app = App::build_default(config).await?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| app::StartupError::Listen { addr, source })?;
            tracing::info!(%addr, "serving; playground at http://{addr}/graphql");
            let (tx, rx) = watch::channel(false);
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutting down");
                let _ = tx.send(true);
            });
            app.serve(listener, rx).await?;
        }
        Cmd::ExportSchema { .. } | Cmd::ConfigReference { .. } => {}
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
