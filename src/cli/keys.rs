//! `tessera keys`: the key API over HTTP, for people and scripts.

use super::load;
use super::token::{TokenArgs, signer_for, token_claims};
use crate::config;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

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

pub(super) fn keys(path: Option<PathBuf>, args: KeysArgs) -> ExitCode {
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
