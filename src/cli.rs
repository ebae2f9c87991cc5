//! The `tessera` command line: `serve`, `token`, `keys`, `check-config` (flags are a public
//! contract: see the README).

use crate::app::App;
use crate::auth::mint::Signer;
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

/// `tessera devices`
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// DRM system.
    #[command(subcommand)]
    pub system: DevicesSystem,
}

/// Systems `tessera devices` can provision for.
#[derive(Debug, Subcommand)]
pub enum DevicesSystem {
    /// A Widevine-style test device (`.wvd` v2, the file pywidevine loads), or a new root.
    Widevine(WidevineDeviceArgs),
    /// A FairPlay-style test device for a tenant's credential: `{r2, dask, hu}` and the
    /// public certificate (never the ASk).
    Fairplay(FairPlayDeviceArgs),
    /// A PlayReady-style test device (`.prd` v3, the file pyplayready loads) under a root,
    /// a new root, or the server public key clients encrypt challenges to.
    Playready(PlayReadyDeviceArgs),
}

/// `tessera devices playready` (flags are relied on by tests and users: keep them).
#[derive(Debug, Args)]
pub struct PlayReadyDeviceArgs {
    /// Where to write the `.prd` device file (mode 0600).
    #[arg(long, required_unless_present_any = ["new_root", "server_public_key"])]
    pub out: Option<PathBuf>,
    /// Root directory to issue under (`root-key.pem`; default: the committed dev root,
    /// keys/dev/playready, which dev-mode `serve` trusts).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Create a fresh root, server key and response-signing chain in this new directory
    /// first; with --out, the device is made under it.
    #[arg(long = "new-root", conflicts_with = "root")]
    pub new_root: Option<PathBuf>,
    /// Print the server public key (PEM) clients must encrypt challenges to: the one of
    /// `--config`'s `[playready] server_key_file`, or the dev key.
    #[arg(long = "server-public-key", conflicts_with_all = ["out", "new_root"])]
    pub server_public_key: bool,
    /// The device's security level (150, 2000 or 3000).
    #[arg(long = "security-level", default_value_t = 2000)]
    pub security_level: u32,
    /// Model name written into the model and device certificates (revocation by model
    /// matches it).
    #[arg(long, default_value = "Tessera test device")]
    pub model: String,
    /// Also write the model's group certificate chain (`bgroupcert.dat`) and key
    /// (`zgpriv.dat`) into this new directory, so other tools can issue devices under it.
    #[arg(long = "group-out")]
    pub group_out: Option<PathBuf>,
}

/// `tessera devices fairplay` (flags are relied on by tests and users: keep them).
#[derive(Debug, Args)]
pub struct FairPlayDeviceArgs {
    /// Where to write the device (JSON, mode 0600).
    #[arg(long)]
    pub out: PathBuf,
    /// Tenant whose credential the device is for (dev mode: `demo`, with the credential of
    /// `keys/dev/fairplay`; otherwise the tenant's first credential in `--config`).
    #[arg(long, default_value = "demo")]
    pub tenant: String,
}

/// `tessera devices widevine` (flags are relied on by tests and users: keep them).
#[derive(Debug, Args)]
pub struct WidevineDeviceArgs {
    /// Where to write the `.wvd` device file.
    #[arg(long, required_unless_present = "new_root")]
    pub out: Option<PathBuf>,
    /// Root directory to sign under (default: the committed dev root, keys/dev/widevine,
    /// which dev-mode `serve` trusts).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Create a fresh root (and service certificate) in this new directory first; with
    /// --out, the device is made under it.
    #[arg(long = "new-root", conflicts_with = "root")]
    pub new_root: Option<PathBuf>,
    /// Provider id written into a new root's service certificate.
    #[arg(long = "provider-id", default_value = "tessera")]
    pub provider_id: String,
    /// System id of the device model.
    #[arg(long = "system-id", default_value_t = 0x7E57)]
    pub system_id: u32,
    /// Highest HDCP version the device reports (NONE, V1, V2, V2.1, V2.2, V2.3,
    /// NO_DIGITAL_OUTPUT).
    #[arg(long = "max-hdcp", default_value = "V2.2")]
    pub max_hdcp: String,
    /// Make the device certificate expire this many seconds from now (0: never).
    #[arg(long = "expires-in", default_value_t = 0)]
    pub expires_in: u64,
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

/// `tessera token`
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Tenant whose signing key signs the token.
    #[arg(long, default_value = "demo")]
    pub tenant: String,
    /// Entitle a KID (UUID or 32 hex digits); repeatable.
    #[arg(long)]
    pub kid: Vec<String>,
    /// Entitle every key of a content id; repeatable.
    #[arg(long = "content-id")]
    pub content_id: Vec<String>,
    /// Licence policy: a policy name, or an inline JSON object.
    #[arg(long)]
    pub policy: Option<String>,
    /// Service scope (keys:read, keys:write, admin); repeatable.
    #[arg(long)]
    pub scope: Vec<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: i64,
    /// Subject (`sub`).
    #[arg(long)]
    pub sub: Option<String>,
    /// Token id (`jti`); random by default.
    #[arg(long)]
    pub jti: Option<String>,
    /// Accept the token at most N times (needs jti; one is generated).
    #[arg(long = "max-uses")]
    pub max_uses: Option<u32>,
    /// Print N distinct tokens, one per line (load tests).
    #[arg(long, default_value_t = 1)]
    pub count: u32,
}

/// `tessera keys`
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// Internal listener base URL.
    #[arg(long, env = config::env::SERVER, default_value = "http://127.0.0.1:8081")]
    pub server: String,
    /// Service token; minted from the tenant's signing key when absent.
    #[arg(long, env = config::env::TOKEN, hide_env_values = true)]
    pub token: Option<String>,
    /// Tenant used to mint a token when none is given.
    #[arg(long, default_value = "demo")]
    pub tenant: String,
    /// Operation.
    #[command(subcommand)]
    pub op: KeysOp,
}

/// Key API operations.
#[derive(Debug, Subcommand)]
pub enum KeysOp {
    /// Generate keys for a content id.
    Create {
        /// Content id.
        #[arg(long = "content-id")]
        content_id: String,
        /// Track types (SD, HD, UHD1, UHD2, AUDIO); repeatable.
        #[arg(long = "track", required = true)]
        tracks: Vec<String>,
        /// First crypto period (key rotation).
        #[arg(long)]
        period: Option<u64>,
        /// Number of periods from --period.
        #[arg(long = "period-count")]
        period_count: Option<u64>,
    },
    /// Import keys: KID=BASE64KEY; repeatable.
    Import {
        /// Content id.
        #[arg(long = "content-id")]
        content_id: String,
        /// KID=BASE64 (16-byte key).
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
    },
    /// Show one key.
    Get {
        /// KID.
        kid: String,
    },
    /// List the keys of a content id.
    List {
        /// Content id.
        #[arg(long = "content-id")]
        content_id: String,
    },
    /// Revoke a key.
    Revoke {
        /// KID.
        kid: String,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(cli.config, args),
        Command::Token(args) => token(cli.config, args),
        Command::Keys(args) => keys(cli.config, args),
        Command::CheckConfig => check_config(cli.config),
        Command::Migrate => migrate(cli.config),
        Command::Devices(args) => devices(cli.config, args),
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

/// The committed dev root, relative to the repository (what dev-mode `serve` trusts).
const DEV_WIDEVINE_ROOT: &str = "keys/dev/widevine";

fn devices(config: Option<PathBuf>, args: DevicesArgs) -> ExitCode {
    use crate::protocol::widevine::pb::client_identification::client_capabilities::HdcpVersion;
    use crate::protocol::widevine::provision::{DeviceOptions, Root};
    let a = match args.system {
        DevicesSystem::Widevine(a) => a,
        DevicesSystem::Fairplay(f) => return fairplay_device(config, f),
        DevicesSystem::Playready(p) => return playready_device(config, p),
    };
    let fail = |m: String| {
        eprintln!("tessera devices widevine: {m}");
        ExitCode::FAILURE
    };
    let now = crate::app::now_secs();
    let max_hdcp = match a.max_hdcp.to_ascii_uppercase().as_str() {
        "NONE" => HdcpVersion::HdcpNone,
        "V1" => HdcpVersion::HdcpV1,
        "V2" => HdcpVersion::HdcpV2,
        "V2.1" => HdcpVersion::HdcpV21,
        "V2.2" => HdcpVersion::HdcpV22,
        "V2.3" => HdcpVersion::HdcpV23,
        "NO_DIGITAL_OUTPUT" => HdcpVersion::HdcpNoDigitalOutput,
        other => {
            eprintln!("tessera devices widevine: unknown --max-hdcp {other:?}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let root = match (&a.new_root, &a.root) {
        (Some(dir), _) => match Root::create_dir(dir, &a.provider_id, now) {
            Ok(r) => {
                eprintln!(
                    "created root and service certificate in {} (trust root-public.pem)",
                    dir.display()
                );
                r
            }
            Err(e) => return fail(e.to_string()),
        },
        (None, dir) => {
            let dir = dir.clone().unwrap_or_else(|| DEV_WIDEVINE_ROOT.into());
            match Root::load(&dir) {
                Ok(r) => r,
                Err(e) => return fail(format!("root {}: {e}", dir.display())),
            }
        }
    };
    let Some(out) = a.out else {
        return ExitCode::SUCCESS;
    };
    let opts = DeviceOptions {
        system_id: a.system_id,
        max_hdcp,
        expires_at: if a.expires_in == 0 {
            0
        } else {
            now + a.expires_in
        },
    };
    let device = match root.device(&opts, now) {
        Ok(d) => d,
        Err(e) => return fail(e.to_string()),
    };
    if let Err(e) = crate::protocol::widevine::provision::write(&out, &device.wvd, true) {
        return fail(e.to_string());
    }
    // What a test or an operator needs to refer to the device (revocation by serial).
    println!(
        "{}",
        serde_json::json!({
            "wvd": out.display().to_string(),
            "system_id": a.system_id,
            "serial": crate::encoding::hex_encode(&device.serial),
        })
    );
    ExitCode::SUCCESS
}

fn fairplay_device(config: Option<PathBuf>, a: FairPlayDeviceArgs) -> ExitCode {
    let fail = |m: String| {
        eprintln!("tessera devices fairplay: {m}");
        ExitCode::FAILURE
    };
    let cfg = match load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let fp = match crate::protocol::fairplay::setup::FairPlay::from_config(&cfg) {
        Ok(f) => f,
        Err(e) => return fail(e.to_string()),
    };
    let Some(idx) = cfg.tenants.iter().position(|t| t.id == a.tenant) else {
        return fail(format!("no tenant {:?}", a.tenant));
    };
    let Some(cred) = fp.for_tenant(idx as u32) else {
        return fail(format!("tenant {:?} has no FairPlay credential", a.tenant));
    };
    let (r2, dask, hu) = match cred.provision_test_device() {
        Ok(d) => d,
        Err(e) => return fail(e.to_string()),
    };
    let hex = crate::encoding::hex_encode;
    let device = serde_json::json!({
        "tenant": a.tenant,
        "r2": hex(&r2),
        "dask": hex(&dask),
        "hu": hex(&hu),
        "certificate": crate::encoding::b64_encode(&cred.certificate),
    });
    // DASk is this device's secret: the file is private, like a .wvd.
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&a.out)?;
        f.write_all(device.to_string().as_bytes())
    };
    if let Err(e) = write() {
        return fail(format!("{}: {e}", a.out.display()));
    }
    println!(
        "{}",
        serde_json::json!({"device": a.out.display().to_string(), "hu": hex(&hu), "tenant": a.tenant})
    );
    ExitCode::SUCCESS
}

fn playready_device(config: Option<PathBuf>, a: PlayReadyDeviceArgs) -> ExitCode {
    use crate::protocol::playready::provision::{self, files};
    let fail = |m: String| {
        eprintln!("tessera devices playready: {m}");
        ExitCode::FAILURE
    };
    if a.server_public_key {
        let cfg = match load(config) {
            Ok(c) => c,
            Err(code) => return code,
        };
        return match crate::protocol::playready::PlayReady::load(
            &cfg.protocols.playready,
            cfg.dev_mode,
        ) {
            Ok(Some(pr)) => match crate::crypto::ecc::public_to_pem(pr.server.public()) {
                Ok(pem) => {
                    print!("{pem}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e.to_string()),
            },
            Ok(None) => fail("[playready] is not configured".into()),
            Err(e) => fail(e.to_string()),
        };
    }
    if !matches!(a.security_level, 150 | 2000 | 3000) {
        eprintln!("tessera devices playready: --security-level must be 150, 2000 or 3000");
        return ExitCode::from(EXIT_CONFIG);
    }
    let root = match (&a.new_root, &a.root) {
        (Some(dir), _) => match provision::create_root_dir(dir) {
            Ok(r) => {
                eprintln!(
                    "created root, server key and signing chain in {} (trust {})",
                    dir.display(),
                    files::ROOT_PUBLIC
                );
                r
            }
            Err(e) => return fail(e),
        },
        (None, dir) => {
            let dir = dir.clone().unwrap_or_else(|| DEV_PLAYREADY_ROOT.into());
            match provision::load_root(&dir) {
                Ok(r) => r,
                Err(e) => return fail(e),
            }
        }
    };
    let Some(out) = a.out else {
        return ExitCode::SUCCESS;
    };
    let made = provision::new_group(
        &root,
        crate::protocol::playready::bcert::Manufacturer {
            name: "Tessera".into(),
            model_name: a.model.clone(),
            model_number: "1".into(),
        },
        a.security_level,
    )
    .and_then(|g| provision::new_device(&g, a.security_level).map(|d| (g, d)));
    let (group, device) = match made {
        Ok(m) => m,
        Err(e) => return fail(e.to_string()),
    };
    let write = crate::protocol::widevine::provision::write;
    if let Err(e) = write(&out, &device.prd(&group), true) {
        return fail(e.to_string());
    }
    if let Some(dir) = &a.group_out {
        let r = std::fs::create_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))
            .and_then(|()| {
                write(&dir.join("bgroupcert.dat"), &group.chain, false)
                    .and_then(|()| write(&dir.join("zgpriv.dat"), group.key.scalar(), true))
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = r {
            return fail(e);
        }
    }
    let hex = crate::encoding::hex_encode;
    // What a test or an operator needs to refer to the device (revocation by id or model).
    let certs = crate::protocol::playready::bcert::parse_chain(&device.chain)
        .map(|c| c.iter().map(|c| hex(&c.basic.cert_id)).collect::<Vec<_>>())
        .unwrap_or_default();
    println!(
        "{}",
        serde_json::json!({
            "prd": out.display().to_string(),
            "security_level": a.security_level,
            "model": a.model,
            "cert_id": hex(&device.cert_id),
            "client_id": hex(&device.client_id),
            "chain_cert_ids": certs,
        })
    );
    ExitCode::SUCCESS
}

/// The committed PlayReady-style dev root.
const DEV_PLAYREADY_ROOT: &str = "keys/dev/playready";

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

/// Builds the claims `tessera token` signs.
pub fn token_claims(cfg: &Config, args: &TokenArgs, now: i64) -> Result<serde_json::Value, String> {
    let tenant = cfg
        .tenant(&args.tenant)
        .ok_or_else(|| format!("no tenant {:?} in the configuration", args.tenant))?;
    let mut claims = serde_json::json!({
        "iss": tenant.issuers.first().ok_or("tenant has no issuer")?,
        "iat": now,
        "nbf": now,
        "exp": now + args.ttl,
    });
    if let Some(aud) = tenant.audiences.first() {
        claims["aud"] = aud.clone().into();
    }
    if let Some(sub) = &args.sub {
        claims["sub"] = sub.clone().into();
    }
    let jti = match &args.jti {
        Some(j) => j.clone(),
        None => crate::crypto::random_array::<16>()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    };
    claims["jti"] = jti.into();
    if !args.scope.is_empty() {
        claims["scope"] = args.scope.join(" ").into();
    }
    if !args.kid.is_empty()
        || !args.content_id.is_empty()
        || args.policy.is_some()
        || args.max_uses.is_some()
    {
        let mut ent = serde_json::json!({});
        if !args.kid.is_empty() {
            let kids = args
                .kid
                .iter()
                .map(|k| {
                    crate::keyring::KeyId::parse(k)
                        .map(|k| k.to_string())
                        .map_err(|e| format!("--kid {k}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            ent["kids"] = kids.into();
        }
        if !args.content_id.is_empty() {
            ent["content_ids"] = args.content_id.clone().into();
        }
        if let Some(p) = &args.policy {
            ent["policy"] = if p.trim_start().starts_with('{') {
                let inline: crate::license::policy::Policy =
                    serde_json::from_str(p).map_err(|e| format!("--policy: {e}"))?;
                inline.validate().map_err(|e| format!("--policy: {e}"))?;
                serde_json::from_str(p).map_err(|e| format!("--policy: {e}"))?
            } else {
                p.clone().into()
            };
        }
        if let Some(m) = args.max_uses {
            ent["max_uses"] = m.into();
        }
        claims["tessera"] = ent;
    }
    Ok(claims)
}

fn signer_for(cfg: &Config, tenant: &str) -> Result<Signer, String> {
    let t = cfg
        .tenant(tenant)
        .ok_or_else(|| format!("no tenant {tenant:?} in the configuration"))?;
    let sk = t
        .signing_key
        .as_ref()
        .ok_or_else(|| format!("tenant {tenant:?} has no signing_key configured"))?;
    Signer::from_config(sk, cfg.dev_mode).map_err(|e| e.to_string())
}

fn token(path: Option<PathBuf>, args: TokenArgs) -> ExitCode {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let run = || -> Result<(), String> {
        let signer = signer_for(&cfg, &args.tenant)?;
        let now = crate::app::now_secs() as i64;
        let mut out = String::new();
        for i in 0..args.count.max(1) {
            let mut claims = token_claims(&cfg, &args, now)?;
            if args.count > 1 && args.jti.is_some() {
                claims["jti"] = format!("{}-{i}", args.jti.as_deref().unwrap_or_default()).into();
            }
            out.push_str(&signer.sign(&claims).map_err(|e| e.to_string())?);
            out.push('\n');
        }
        print!("{out}");
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera token: {e}");
            ExitCode::FAILURE
        }
    }
}

fn keys(path: Option<PathBuf>, args: KeysArgs) -> ExitCode {
    let run = || -> Result<(u16, String), String> {
        let write = matches!(
            args.op,
            KeysOp::Create { .. } | KeysOp::Import { .. } | KeysOp::Revoke { .. }
        );
        let token = match &args.token {
            Some(t) => t.clone(),
            None => {
                let cfg = load(path.clone())
                    .map_err(|_| "cannot load configuration to mint a token".to_owned())?;
                // Writers get keys:read too: a packager creating keys needs their material back.
                let scope = if write {
                    "keys:read keys:write"
                } else {
                    "keys:read"
                };
                let targs = TokenArgs {
                    tenant: args.tenant.clone(),
                    kid: vec![],
                    content_id: vec![],
                    policy: None,
                    scope: vec![scope.into()],
                    ttl: 300,
                    sub: Some("tessera-cli".into()),
                    jti: None,
                    max_uses: None,
                    count: 1,
                };
                signer_for(&cfg, &args.tenant)?
                    .sign(&token_claims(&cfg, &targs, crate::app::now_secs() as i64)?)
                    .map_err(|e| e.to_string())?
            }
        };
        let base = args.server.trim_end_matches('/');
        let (method, url, body) = match &args.op {
            KeysOp::Create {
                content_id,
                tracks,
                period,
                period_count,
            } => {
                let mut b = serde_json::json!({"content_id": content_id, "tracks": tracks});
                if let Some(p) = period {
                    b["period"] = (*p).into();
                }
                if let Some(c) = period_count {
                    b["period_count"] = (*c).into();
                }
                ("POST", format!("{base}/v1/keys"), Some(b))
            }
            KeysOp::Import { content_id, keys } => {
                let keys = keys
                    .iter()
                    .map(|k| {
                        let (kid, key) = k
                            .split_once('=')
                            .ok_or_else(|| format!("--key {k:?}: expected KID=BASE64"))?;
                        Ok(serde_json::json!({"kid": kid, "key": key}))
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                (
                    "POST",
                    format!("{base}/v1/keys"),
                    Some(serde_json::json!({"content_id": content_id, "keys": keys})),
                )
            }
            KeysOp::Get { kid } => ("GET", format!("{base}/v1/keys/{kid}"), None),
            KeysOp::List { content_id } => (
                "GET",
                format!(
                    "{base}/v1/keys?content_id={}",
                    crate::encoding::percent_encode(content_id)
                ),
                None,
            ),
            KeysOp::Revoke { kid } => ("POST", format!("{base}/v1/keys/{kid}/revoke"), None),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(http_call(method, &url, &token, body))
    };
    match run() {
        Ok((status, body)) => {
            println!("{body}");
            if (200..300).contains(&status) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("tessera keys: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn http_call(
    method: &str,
    url: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> Result<(u16, String), String> {
    use http_body_util::{BodyExt, Full};
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let client: hyper_util::client::legacy::Client<_, Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https);
    let req = http::Request::builder()
        .method(method)
        .uri(url)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(
            body.map(|b| b.to_string()).unwrap_or_default().into(),
        ))
        .map_err(|e| e.to_string())?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
