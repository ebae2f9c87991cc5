//! The `tessera` command line (flags are a public contract: see the README): `serve` and
//! `check-config` here, with the argument parsing; `token`, `keys` (the key API's HTTP
//! client) and `devices` (test devices and roots) in files of their own.

mod devices;
mod keys;
mod token;

pub use devices::{
    DevicesArgs, DevicesSystem, FairPlayDeviceArgs, PlayReadyDeviceArgs, WidevineDeviceArgs,
};
pub use keys::{KeysArgs, KeysOp};
pub use token::{TokenArgs, token_claims};

use crate::app::App;
use crate::config::{self, Config};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code for configuration errors (sysexits EX_USAGE).
pub const EXIT_CONFIG: u8 = 64;

/// Tessera: DRM licence and key delivery server.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    /// Config file (TOML). Without one, Tessera runs in dev mode with embedded defaults.
    #[arg(long, global = true, env = config::env::CONFIG)]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server.
    Serve(ServeArgs),
    /// Mint a test JWT with a tenant's configured signing key.
    Token(TokenArgs),
    /// Talk to the internal key API.
    Keys(KeysArgs),
    /// Load and validate the configuration, then exit.
    CheckConfig,
    /// Apply the PostgreSQL schema migrations of this binary to `storage.postgres.primary_url`
    /// (idempotent; run before starting a new version).
    Migrate,
    /// Create test devices and roots of trust (testing only).
    Devices(DevicesArgs),
}

/// `tessera serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Public listener address (overrides config and TESSERA_PUBLIC_ADDR).
    #[arg(long)]
    pub public_addr: Option<SocketAddr>,
    /// Internal listener address (overrides config and TESSERA_INTERNAL_ADDR).
    #[arg(long)]
    pub internal_addr: Option<SocketAddr>,
    /// Data directory (overrides config and TESSERA_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(cli.config, args),
        Command::Token(args) => token::token(cli.config, args),
        Command::Keys(args) => keys::keys(cli.config, args),
        Command::CheckConfig => check_config(cli.config),
        Command::Migrate => migrate(cli.config),
        Command::Devices(args) => devices::devices(cli.config, args),
    }
}

fn migrate(path: Option<PathBuf>) -> ExitCode {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if cfg.storage.backend != "postgres" {
        eprintln!("tessera migrate: storage.backend is not \"postgres\"; nothing to migrate");
        return ExitCode::from(EXIT_CONFIG);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tessera migrate: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(crate::store::postgres::migrate(&cfg.storage.postgres)) {
        Ok(applied) if applied.is_empty() => {
            println!("schema up to date");
            ExitCode::SUCCESS
        }
        Ok(applied) => {
            println!("applied migrations {applied:?}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tessera migrate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<PathBuf>) -> Result<Config, ExitCode> {
    Config::load(path.as_deref()).map_err(|e| {
        eprintln!("tessera: {e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// `tessera check-config`: exactly the startup step `serve` runs before it opens the store
/// ([`crate::app::prepare`]: every file read and checked), its result discarded.
fn check_config(path: Option<PathBuf>) -> ExitCode {
    let prepared = load(path).and_then(|cfg| {
        crate::app::prepare(cfg).map_err(|e| {
            eprintln!("tessera: {e}");
            ExitCode::from(EXIT_CONFIG)
        })
    });
    match prepared.map(|p| p.config) {
        Ok(cfg) => {
            println!(
                "configuration OK: {} tenant(s), public {}, internal {}, data dir {}{}",
                cfg.tenants.len(),
                cfg.server.public_addr,
                cfg.server.internal_addr,
                cfg.storage.data_dir.display(),
                if cfg.dev_mode { " (dev mode)" } else { "" }
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

const DEV_BANNER: &str = "\
************************************************************************
*  TESSERA DEV MODE: the demo tenant's token key is PUBLIC (keys/dev), *
*  its master key is generated into the data directory unless         *
*  TESSERA_MASTER_KEY(_FILE) is set, and listeners are loopback only.  *
*  Never protect real content with this. Pass --config for production. *
************************************************************************";

fn serve(path: Option<PathBuf>, args: ServeArgs) -> ExitCode {
    // Flags override the environment and the file, and are validated with them.
    let cfg = Config::load_with(path.as_deref(), |cfg| {
        if let Some(a) = args.public_addr {
            cfg.server.public_addr = a;
        }
        if let Some(a) = args.internal_addr {
            cfg.server.internal_addr = a;
        }
        if let Some(d) = args.data_dir {
            cfg.storage.data_dir = d;
        }
    });
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tessera: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(e) = crate::telemetry::init(cfg.telemetry.log_format, &cfg.telemetry.log_level) {
        eprintln!("tessera: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    // Every file the configuration names, read and checked before anything is opened.
    let prepared = match crate::app::prepare(cfg) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tessera: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if prepared.config.server.worker_threads > 0 {
        rt.worker_threads(prepared.config.server.worker_threads);
    }
    let rt = match rt.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tessera: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let dev = prepared.config.dev_mode;
        let app = match App::open(prepared).await {
            Ok(app) => app,
            Err(e) => {
                tracing::error!(error = %e, "startup failed");
                eprintln!("tessera: startup failed: {e}");
                return ExitCode::FAILURE;
            }
        };
        let running = match crate::service::start(app).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("tessera: {e}");
                return ExitCode::FAILURE;
            }
        };
        if dev {
            eprintln!("{DEV_BANNER}");
            tracing::warn!("dev mode: public test keys in use");
        }
        let stop = crate::shutdown::signal();
        tracing::info!(public = %running.public_addr, internal = %running.internal_addr, "listening");
        // One machine-readable line on stdout, for scripts and tests that bind port 0.
        println!("tessera listening public={} internal={}", running.public_addr, running.internal_addr);
        stop.await;
        tracing::info!("shutdown requested: draining");
        running.shutdown().await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}
