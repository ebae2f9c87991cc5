//! `tessera devices`: test devices for each DRM system under the dev roots (or roots of the
//! operator's), and new roots.

use super::{EXIT_CONFIG, load};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

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

/// The committed dev root, relative to the repository (what dev-mode `serve` trusts).
const DEV_WIDEVINE_ROOT: &str = "keys/dev/widevine";

pub(super) fn devices(config: Option<PathBuf>, args: DevicesArgs) -> ExitCode {
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
