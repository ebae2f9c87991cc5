//! Tessera: a DRM licence and key delivery server.
//!
//! # Layout
//!
//! Requests flow `http -> protocol::*::handler -> license / auth / keyring / store -> crypto`
//! (`docs/architecture.md`):
//!
//! - [`http`]: two listeners (public: licences, CORS; internal: key APIs, metrics, health),
//!   the router compiled from every protocol's routes, body caps, error rendering (where
//!   each failure's status class is decided, `http::error`), graceful drain.
//! - [`protocol`]: one folder per wire format, each a pure codec, a thin handler and one
//!   `Protocol` registration (routes, metric label, denial codes, configuration sections,
//!   state), listed once in `protocols!`: ClearKey (`clearkey`), HLS AES-128 key delivery
//!   (`hls`), Widevine-style licences (`widevine`), PlayReady-style licences and packaging
//!   (`playready`), FairPlay-style certificates and CKCs (`fairplay`), the REST key API
//!   (`keyapi`), SPEKE v2 over CPIX (`cpix`), the Widevine-style key API (`wvkeys`). Shared:
//!   `wire` (the bounded reader of binary formats), `signalling` (PSSH boxes, headers, key
//!   URIs), `chain_cache` (verified device chains), `refusal` (problem-JSON refusals).
//! - [`auth`]: tokens per tenant, verified by `jsonwebtoken` on ring (HS/RS/PS/ES/EdDSA, PEM,
//!   X.509, JWKS), the entitlement and service claims, replay prevention, minting for
//!   `tessera token`.
//! - [`license`]: the protocol-neutral rules (entitlement + requested KIDs -> grant) and the
//!   neutral licence policy each DRM maps from.
//! - [`keyring`]: key ids, content keys (zeroized, redacted), envelope encryption at rest,
//!   the hot cache.
//! - [`store`]: the `KeyStore` trait, the `Store` handle that times and counts every call,
//!   the embedded redb backend, the PostgreSQL backend (`store::postgres`: pools, migrations,
//!   the commit-ordered change feed), the conformance suite.
//! - [`crypto`]: the one module that names a crypto library (ring; OpenSSL where measured;
//!   jsonwebtoken's provider in `crypto::jws`).
//! - [`config`]: configuration as plain data, one file per section; [`app`]: `prepare` (every
//!   file the configuration names, read once) and the `App` every request shares.
//! - [`telemetry`], [`audit`], [`service`] (bind, serve, drain), [`shutdown`], [`cli`],
//!   [`xml`] (bounded, DTD-free), [`encoding`].
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
