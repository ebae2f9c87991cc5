//! `tessera token`: test tokens signed with a tenant's configured `signing_key`.

use super::load;
use crate::auth::mint::Signer;
use crate::config::Config;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

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

pub(super) fn signer_for(cfg: &Config, tenant: &str) -> Result<Signer, String> {
    let t = cfg
        .tenant(tenant)
        .ok_or_else(|| format!("no tenant {tenant:?} in the configuration"))?;
    let sk = t
        .signing_key
        .as_ref()
        .ok_or_else(|| format!("tenant {tenant:?} has no signing_key configured"))?;
    Signer::from_config(sk, cfg.dev_mode).map_err(|e| e.to_string())
}

pub(super) fn token(path: Option<PathBuf>, args: TokenArgs) -> ExitCode {
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
