//! SPEKE v2.0 / v2.1 over CPIX 2.3 / 2.4 on the internal listener (`POST /speke/v2`):
//! packagers and encryptors (AWS Elemental MediaPackage and MediaConvert, or any SPEKE v2
//! client) get keys and the DRM signalling for Widevine, PlayReady, FairPlay, HLS AES-128 and
//! the W3C common PSSH in one document (`docs/protocols.md`, "SPEKE").

pub mod delivery;
pub mod document;
pub mod handler;

use crate::app::App;
use crate::config::SetupError;
use crate::http::Ctx;
use crate::http::router::Listener;
use crate::protocol::{HttpResponse, PrepareCx, Protocol, RouteSpec};

/// `POST /speke/v2`, as the server registers it.
#[derive(Debug)]
pub struct SpekeProtocol;

impl Protocol for SpekeProtocol {
    const NAME: &'static str = "speke";
    const ISSUES_LICENCES: bool = false;
    const ROUTES: &'static [RouteSpec<()>] = &[RouteSpec {
        endpoint: "speke",
        listener: Listener::Internal,
        methods: &["POST"],
        paths: &["/speke/v2"],
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
        _: Option<&str>,
        ctx: &mut Ctx,
    ) -> impl Future<Output = HttpResponse> + Send {
        handler::handle(app, req, ctx)
    }
}
