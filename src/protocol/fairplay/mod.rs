//! FairPlay-style key delivery: the pure codecs (SPC in, CKC out) of the profile described in
//! `docs/fairplay.md`, with Tessera's own credentials (`tessera-d-v1`, the v3-T constants).
//!
//! This is the protocol layer only; the HTTP endpoint, credential sets per tenant and the
//! device-provisioning command build on it. Nothing here touches tokio, hyper, the store or
//! the clock (STYLE P1): callers pass keys, credentials and randomness in.
//!
//! Error codes are FairPlay Streaming's (`FPSStatus`), so a client log reads the same as with
//! any other key server.

pub mod asset;
pub mod ckc;
mod config;
pub mod dfunc;
#[cfg(feature = "fairplay-licensee-ffi")]
pub mod ffi;
pub mod handler;
pub mod request;
pub mod setup;
pub mod spc;
pub mod tllv;

#[cfg(test)]
mod tests;

pub use config::FairPlayCredentialConfig;

/// What a route of [`FairPlayProtocol`] serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /fairplay/certificate`.
    Certificate,
    /// `POST /fairplay/license`.
    License,
}

/// FairPlay-style certificates and CKCs, as the server registers them: the credential sets
/// of `[[tenants.fairplay_credentials]]` (and dev mode's).
#[derive(Debug)]
pub struct FairPlayProtocol(setup::FairPlay);

impl crate::protocol::Protocol for FairPlayProtocol {
    const NAME: &'static str = "fairplay";
    const ISSUES_LICENCES: bool = true;
    const ROUTES: &'static [crate::protocol::RouteSpec<Route>] = &[
        crate::protocol::RouteSpec {
            endpoint: "fairplay_license",
            listener: crate::http::router::Listener::Public,
            methods: &["POST"],
            paths: &["/fairplay/license", "/fairplay/ckc"],
            route: Route::License,
        },
        crate::protocol::RouteSpec {
            endpoint: "fairplay_certificate",
            listener: crate::http::router::Listener::Public,
            methods: &["GET", "HEAD"],
            paths: &["/fairplay/certificate"],
            route: Route::Certificate,
        },
    ];
    const TENANT_SECTION: Option<&'static str> = Some("fairplay_credentials");
    type Route = Route;
    type Config = ();
    type TenantConfig = Vec<FairPlayCredentialConfig>;

    fn prepare(
        cx: &crate::protocol::PrepareCx<'_>,
        _: &(),
        _: &[&Vec<FairPlayCredentialConfig>],
    ) -> Result<Self, crate::config::SetupError> {
        setup::FairPlay::from_config(cx.config).map(Self)
    }

    async fn handle(
        &self,
        app: &crate::app::App,
        route: Route,
        req: http::Request<hyper::body::Incoming>,
        _: Option<&str>,
        ctx: &mut crate::http::Ctx,
    ) -> crate::protocol::HttpResponse {
        match route {
            Route::Certificate => handler::certificate(app, &self.0, &req),
            Route::License => handler::license(app, &self.0, req, ctx).await,
        }
    }
}

/// Errors of the FairPlay-style codecs, each with its FPS status code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The container version is not 1, 2 or 3.
    #[error("unsupported SPC version {0}")]
    SpcVersion(u32),
    /// Lengths or sizes do not add up.
    #[error("malformed SPC: {0}")]
    Parser(&'static str),
    /// A mandatory TLLV (or one the return request names) is absent.
    #[error("missing required TLLV {0:#018x}")]
    MissingTag(u64),
    /// A value is out of range.
    #[error("bad parameter: {0}")]
    Param(&'static str),
    /// The v3 transport MAC or the [SK..R1] integrity field does not match.
    #[error("integrity check failed")]
    Integrity,
    /// The protocol version used is not the best both sides support.
    #[error("protocol version mismatch")]
    Version,
    /// A tag appears twice.
    #[error("duplicate TLLV {0:#018x}")]
    DupTag(u64),
    /// Unknown certificate hash, a key of the wrong size for the version, or a failed
    /// unwrap: one error for all, so the answer says nothing about which.
    #[error("unknown certificate or undecryptable key")]
    Certificate,
    /// Random numbers or a cipher failed.
    #[error("internal error")]
    Internal,
}

impl Error {
    /// The FPS status code.
    pub fn code(&self) -> i32 {
        match self {
            Error::SpcVersion(_) => -42580,
            Error::Parser(_) => -42581,
            Error::MissingTag(_) => -42583,
            Error::Param(_) => -42585,
            Error::Integrity => -42589,
            Error::Version => -42590,
            Error::DupTag(_) => -42591,
            Error::Internal => -42601,
            Error::Certificate => -42605,
        }
    }
}
