//! Tessera: a DRM licence and key delivery server.
//!
//! # Layout
//!
//! Requests flow `http -> protocol::*::handler -> license / auth / keyring / store -> crypto`
//! (`docs/architecture.md`):
//!
//! - [`http`]: two listeners (public: licences, CORS; internal: key API, metrics, health),
//!   routing, body caps, problem rendering, graceful drain.
//! - [`protocol`]: one folder per wire format, each a pure codec plus a thin handler:
//!   ClearKey, HLS AES-128 key delivery, the REST key API.
//! - [`auth`]: JWT verification per tenant (HS/RS/PS/ES/EdDSA, PEM, X.509, JWKS), the
//!   entitlement and service claims, replay prevention, token minting for `tessera token`.
//! - [`license`]: the protocol-neutral rules (entitlement + requested KIDs -> grant) and the
//!   neutral licence policy each DRM maps from.
//! - [`keyring`]: key ids, content keys (zeroized, redacted), envelope encryption at rest,
//!   the hot cache.
//! - [`store`]: the `KeyStore` trait, the embedded redb backend, the conformance suite.
//! - [`crypto`]: the one module that names a crypto library (ring).
//! - [`app`], [`config`], [`telemetry`], [`audit`], [`service`], [`shutdown`], [`cli`].
//!
//! Codecs never touch tokio, hyper, the store or the clock; time and randomness are inputs.

// Denied, not forbidden: the opt-in FairPlay licensee adapter (protocol::fairplay::ffi,
// feature `fairplay-licensee-ffi`) must call a C ABI, and is the one module allowed to.
#![deny(unsafe_code)]

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod encoding;
pub mod http;
pub mod keyring;
pub mod license;
pub mod protocol;
pub mod service;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod xml;
