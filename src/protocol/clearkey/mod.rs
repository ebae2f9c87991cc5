//! W3C ClearKey licences (Encrypted Media Extensions, §9.1 "Clear Key"; licence request
//! format §9.1.3, licence format §9.1.4).
//!
//! `POST /clearkey/license` takes `{"kids":[b64url],"type":...}` and answers a JWK set of the
//! requested keys the token entitles, omitting the rest; 403 when none is (see
//! `docs/protocols.md`, "ClearKey").

pub mod handler;
pub mod message;

use crate::app::App;
use crate::config::SetupError;
use crate::http::Ctx;
use crate::http::router::Listener;
use crate::protocol::{HttpResponse, PrepareCx, Protocol, RouteSpec};

/// `POST /clearkey/license`, as the server registers it.
#[derive(Debug)]
pub struct ClearKeyProtocol;

impl Protocol for ClearKeyProtocol {
    const NAME: &'static str = "clearkey";
    const ISSUES_LICENCES: bool = true;
    const ROUTES: &'static [RouteSpec<()>] = &[RouteSpec {
        endpoint: "clearkey_license",
        listener: Listener::Public,
        methods: &["POST"],
        paths: &["/clearkey/license"],
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
