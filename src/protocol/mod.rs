//! Wire protocols, one folder each: a pure codec (no tokio, hyper, store or clock: STYLE P1),
//! a thin handler that does the I/O through [`crate::app::App`], and one [`Protocol`]
//! implementation that registers it.
//!
//! # Registration
//!
//! A protocol declares, in one place, everything the server needs to serve it
//! ([`Protocol`]): its name (metric label and audit name), its routes with their metric
//! labels, the denial reasons it counts, its configuration sections (a top-level
//! `[section]` and a member of `[[tenants]]`), how its runtime state is built from them
//! (reading each file once), and how a routed request is handled. `protocols!` below
//! lists every protocol once; from that list come the route table the router matches
//! (`crate::http::router`), the metric label sets, the configuration sections
//! (`crate::config`), the state [`crate::app::App`] holds, and the dispatch. Adding
//! a protocol is a folder here and one line in that list (`docs/architecture.md`, "Adding
//! a protocol"); `registry_tests` fails when a route, label, code or section is not wired
//! or not documented.

pub mod chain_cache;
pub mod clearkey;
pub mod cpix;
pub mod fairplay;
pub mod hls;
pub mod keyapi;
pub mod playready;
pub mod refusal;
pub mod signalling;
pub mod widevine;
pub mod wire;
pub mod wvkeys;

#[cfg(test)]
mod registry_tests;

use crate::app::App;
use crate::config::{Config, SetupError};
use crate::http::Ctx;
use crate::http::router::Listener;
use crate::keyring::Keyring;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use std::future::Future;

/// One route of a protocol.
#[derive(Debug)]
pub struct RouteSpec<R: 'static> {
    /// The `endpoint` metric label (`tessera_http_requests_total{endpoint}`).
    pub endpoint: &'static str,
    /// The listener it answers on. Key APIs never on the public one, licences never on the
    /// internal one (`docs/architecture.md`, "Listeners and paths").
    pub listener: Listener,
    /// The methods it answers to, as `Allow` lists them.
    pub methods: &'static [&'static str],
    /// Its path, then any aliases. A `{name}` segment matches one non-empty segment and is
    /// handed to the handler.
    pub paths: &'static [&'static str],
    /// What the protocol's handler is told.
    pub route: R,
}

/// What every handler returns.
pub type HttpResponse = Response<Full<Bytes>>;

/// What a protocol's `prepare` is given besides its own sections.
#[derive(Debug)]
pub struct PrepareCx<'a> {
    /// The whole (validated) configuration.
    pub config: &'a Config,
    /// The keyring (protocols that seal state of their own derive keys from it).
    pub keyring: &'a Keyring,
}

/// A wire protocol, as the server registers it (see the module documentation).
pub trait Protocol: Sized + Send + Sync + 'static {
    /// Protocol name: the `protocol` label of licence metrics and the audit trail's
    /// `protocol` field.
    const NAME: &'static str;
    /// True for protocols that release keys to players (`tessera_licenses_issued_total`
    /// and `tessera_keys_released_total` count them).
    const ISSUES_LICENCES: bool;
    /// Its routes.
    const ROUTES: &'static [RouteSpec<Self::Route>];
    /// Denial reasons it counts in `tessera_auth_denials_total{reason}` besides the token
    /// ones.
    const DENIAL_CODES: &'static [&'static str] = &[];
    /// The name of its top-level configuration section (`[widevine]`), if it has one.
    const SECTION: Option<&'static str> = None;
    /// The name of its member of `[[tenants]]` (`widevine_signers`), if it has one.
    const TENANT_SECTION: Option<&'static str> = None;

    /// What a route tells the handler (`()` for a protocol with one route).
    type Route: Copy + std::fmt::Debug + Send + Sync + 'static;
    /// The top-level section's contents (`()` without one).
    type Config: serde::de::DeserializeOwned + Default + std::fmt::Debug + Send + Sync;
    /// The tenant member's contents (`()` without one).
    type TenantConfig: serde::de::DeserializeOwned + Default + std::fmt::Debug + Send + Sync;

    /// Checks the sections as data (no file is read): part of [`Config::validate`].
    fn check(
        section: &Self::Config,
        tenants: &[&Self::TenantConfig],
    ) -> Result<(), crate::config::Error> {
        let _ = (section, tenants);
        Ok(())
    }

    /// Builds the runtime state, reading every file the sections name exactly once.
    /// `tenants` is positional: index `i` is the tenant of index `i`.
    fn prepare(
        cx: &PrepareCx<'_>,
        section: &Self::Config,
        tenants: &[&Self::TenantConfig],
    ) -> Result<Self, SetupError>;

    /// Handles one request routed to `route`; `param` is the path's `{name}` segment.
    fn handle(
        &self,
        app: &App,
        route: Self::Route,
        req: Request<Incoming>,
        param: Option<&str>,
        ctx: &mut Ctx,
    ) -> impl Future<Output = HttpResponse> + Send;
}

/// A registered route, type-erased: which protocol, and which of its routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteRef {
    /// Position of the protocol in `protocols!`.
    pub protocol: usize,
    /// Position of the route in its `ROUTES`.
    pub route: usize,
}

/// A route of the table the router is built from, with its protocol's name.
#[derive(Clone, Copy, Debug)]
pub struct TableEntry {
    /// Where it dispatches to.
    pub target: RouteRef,
    /// The protocol's name.
    pub protocol: &'static str,
    /// The metric label.
    pub endpoint: &'static str,
    /// The listener.
    pub listener: Listener,
    /// Its methods.
    pub methods: &'static [&'static str],
    /// Its path and aliases.
    pub paths: &'static [&'static str],
}

fn entries<P: Protocol>(index: usize) -> impl Iterator<Item = TableEntry> {
    P::ROUTES.iter().enumerate().map(move |(i, r)| TableEntry {
        target: RouteRef {
            protocol: index,
            route: i,
        },
        protocol: P::NAME,
        endpoint: r.endpoint,
        listener: r.listener,
        methods: r.methods,
        paths: r.paths,
    })
}

/// Reads `key` into `out` when `section` names it. Used by the configuration's
/// deserializer for the sections protocols declare.
fn read_section<'de, A, T>(
    key: &str,
    section: Option<&'static str>,
    out: &mut T,
    map: &mut A,
) -> Result<bool, A::Error>
where
    A: serde::de::MapAccess<'de>,
    T: serde::de::DeserializeOwned,
{
    if section == Some(key) {
        *out = map.next_value()?;
        return Ok(true);
    }
    Ok(false)
}

/// The registration list: every protocol, once. Generates [`Protocols`] (the runtime state
/// of each), [`Sections`] and [`TenantSections`] (their configuration), the route table,
/// and the dispatch.
macro_rules! protocols {
    ($($field:ident: $ty:ty,)+) => {
        /// Every protocol's runtime state, built by [`Protocols::prepare`].
        #[derive(Debug)]
        pub struct Protocols {
            $(
                #[doc = concat!("`", stringify!($ty), "`.")]
                pub $field: $ty,
            )+
        }

        /// Every protocol's top-level configuration section (`()` for those without).
        #[derive(Debug, Default)]
        pub struct Sections {
            $(
                #[doc = concat!("Of `", stringify!($ty), "`.")]
                pub $field: <$ty as Protocol>::Config,
            )+
        }

        /// Every protocol's member of one `[[tenants]]` entry (`()` for those without).
        #[derive(Debug, Default)]
        pub struct TenantSections {
            $(
                #[doc = concat!("Of `", stringify!($ty), "`.")]
                pub $field: <$ty as Protocol>::TenantConfig,
            )+
        }

        impl Sections {
            /// The top-level keys protocols declare.
            pub const KEYS: &'static [Option<&'static str>] = &[$(<$ty as Protocol>::SECTION,)+];

            /// Deserializes the value of `key` when a protocol declares it; false otherwise.
            pub fn read<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                $(
                    if read_section(key, <$ty as Protocol>::SECTION, &mut self.$field, map)? {
                        return Ok(true);
                    }
                )+
                Ok(false)
            }
        }

        impl TenantSections {
            /// The `[[tenants]]` keys protocols declare.
            pub const KEYS: &'static [Option<&'static str>] =
                &[$(<$ty as Protocol>::TENANT_SECTION,)+];

            /// Deserializes the value of `key` when a protocol declares it; false otherwise.
            pub fn read<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                $(
                    if read_section(key, <$ty as Protocol>::TENANT_SECTION, &mut self.$field, map)? {
                        return Ok(true);
                    }
                )+
                Ok(false)
            }
        }

        /// Every protocol's data checks (part of [`Config::validate`]).
        pub fn check(config: &Config) -> Result<(), crate::config::Error> {
            $(
                <$ty as Protocol>::check(
                    &config.protocols.$field,
                    &config.tenants.iter().map(|t| &t.protocols.$field).collect::<Vec<_>>(),
                )?;
            )+
            Ok(())
        }

        impl Protocols {
            /// Builds every protocol's state (each file read once).
            pub fn prepare(cx: &PrepareCx<'_>) -> Result<Self, SetupError> {
                Ok(Self {
                    $(
                        $field: <$ty as Protocol>::prepare(
                            cx,
                            &cx.config.protocols.$field,
                            &cx.config.tenants.iter().map(|t| &t.protocols.$field).collect::<Vec<_>>(),
                        )?,
                    )+
                })
            }

            /// Hands a routed request to its protocol.
            pub async fn dispatch(
                &self,
                app: &App,
                target: RouteRef,
                req: Request<Incoming>,
                param: Option<&str>,
                ctx: &mut Ctx,
            ) -> HttpResponse {
                let mut index = 0;
                $(
                    if target.protocol == index {
                        // Invariant: `target` comes from `table()`, built from these ROUTES.
                        let route = <$ty as Protocol>::ROUTES[target.route].route;
                        return self.$field.handle(app, route, req, param, ctx).await;
                    }
                    index += 1;
                )+
                let _ = index;
                crate::http::error::problem(&crate::http::error::Error::NotFound)
            }
        }

        /// Every protocol's routes, in registration order.
        pub fn table() -> Vec<TableEntry> {
            let mut out = Vec::new();
            let mut index = 0;
            $(
                out.extend(entries::<$ty>(index));
                index += 1;
            )+
            let _ = index;
            out
        }

        /// Every protocol's name, with whether it issues licences.
        pub const NAMES: &[(&str, bool)] =
            &[$((<$ty as Protocol>::NAME, <$ty as Protocol>::ISSUES_LICENCES),)+];

        /// Every protocol's denial codes.
        pub const DENIAL_CODES: &[&[&str]] = &[$(<$ty as Protocol>::DENIAL_CODES,)+];
    };
}

protocols! {
    clearkey: clearkey::ClearKeyProtocol,
    hls: hls::HlsProtocol,
    widevine: widevine::WidevineProtocol,
    playready: playready::PlayReadyProtocol,
    fairplay: fairplay::FairPlayProtocol,
    keyapi: keyapi::KeyApiProtocol,
    speke: cpix::SpekeProtocol,
    widevine_keys: wvkeys::WidevineKeysProtocol,
}

/// The protocols that release keys to players: the `protocol` label values of the licence
/// metrics.
pub fn licence_protocols() -> Vec<&'static str> {
    NAMES
        .iter()
        .filter(|(_, licences)| *licences)
        .map(|(n, _)| *n)
        .collect()
}
