//! HLS AES-128 / SAMPLE-AES key delivery (RFC 8216 §4.3.2.4, `EXT-X-KEY` with `METHOD=AES-128`
//! or `SAMPLE-AES`, `URI` pointing here): `GET /hls/key/{kid}` answers the 16 raw key bytes.
//!
//! The token comes from `Authorization: Bearer` or, for players that cannot set headers,
//! `?token=` (which then appears in URLs: keep such tokens short-lived and single-use).

pub mod handler;

use crate::app::App;
use crate::config::SetupError;
use crate::http::Ctx;
use crate::http::router::Listener;
use crate::protocol::{HttpResponse, PrepareCx, Protocol, RouteSpec};

/// `GET /hls/key/{kid}`, as the server registers it.
#[derive(Debug)]
pub struct HlsProtocol;

impl Protocol for HlsProtocol {
    const NAME: &'static str = "hls";
    const ISSUES_LICENCES: bool = true;
    const ROUTES: &'static [RouteSpec<()>] = &[RouteSpec {
        endpoint: "hls_key",
        listener: Listener::Public,
        methods: &["GET"],
        paths: &["/hls/key/{kid}"],
        route: (),
    }];
    type Route = ();
    type Config = ();
    type TenantConfig = ();

    fn prepare(_: &PrepareCx<'_>, _: &(), _: &[&()]) -> Result<Self, SetupError> {
        Ok(Self)
    }

    fn handle(
        &self,
        app: &App,
        _: (),
        req: http::Request<hyper::body::Incoming>,
        kid: Option<&str>,
        ctx: &mut Ctx,
    ) -> impl Future<Output = HttpResponse> + Send {
        handler::handle(app, req, kid.unwrap_or(""), ctx)
    }
}
