//! The REST key API on the internal listener (`docs/protocols.md`, "Key API"): create
//! (generate) or import content keys, read them, list them by content id, revoke them.
//! Service tokens with `keys:write` / `keys:read` (or `admin`).

pub mod handler;
pub mod message;
pub mod provision;

use crate::app::App;
use crate::config::SetupError;
use crate::http::Ctx;
use crate::http::router::Listener;
use crate::protocol::{HttpResponse, PrepareCx, Protocol, RouteSpec};

/// What a route of [`KeyApiProtocol`] serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /v1/keys?content_id=`
    List,
    /// `POST /v1/keys`
    Create,
    /// `GET /v1/keys/{kid}`
    Get,
    /// `POST /v1/keys/{kid}/revoke`
    Revoke,
}

/// The REST key API, as the server registers it.
#[derive(Debug)]
pub struct KeyApiProtocol;

impl Protocol for KeyApiProtocol {
    const NAME: &'static str = "keyapi";
    const ISSUES_LICENCES: bool = false;
    const ROUTES: &'static [RouteSpec<Route>] = &[
        RouteSpec {
            endpoint: "keys_list",
            listener: Listener::Internal,
            methods: &["GET"],
            paths: &["/v1/keys"],
            route: Route::List,
        },
        RouteSpec {
            endpoint: "keys_create",
            listener: Listener::Internal,
            methods: &["POST"],
            paths: &["/v1/keys"],
            route: Route::Create,
        },
        RouteSpec {
            endpoint: "keys_get",
            listener: Listener::Internal,
            methods: &["GET"],
            paths: &["/v1/keys/{kid}"],
            route: Route::Get,
        },
        RouteSpec {
            endpoint: "keys_revoke",
            listener: Listener::Internal,
            methods: &["POST"],
            paths: &["/v1/keys/{kid}/revoke"],
            route: Route::Revoke,
        },
    ];
    type Route = Route;
    type Config = ();
    type TenantConfig = ();

    fn prepare(_: &PrepareCx<'_>, _: &(), _: &[&()]) -> Result<Self, SetupError> {
        Ok(Self)
    }

    async fn handle(
        &self,
        app: &App,
        route: Route,
        req: http::Request<hyper::body::Incoming>,
        kid: Option<&str>,
        ctx: &mut Ctx,
    ) -> HttpResponse {
        let kid = kid.unwrap_or("");
        match route {
            Route::List => handler::list(app, req, ctx).await,
            Route::Create => handler::create(app, req, ctx).await,
            Route::Get => handler::get(app, req, kid, ctx).await,
            Route::Revoke => handler::revoke(app, req, kid, ctx).await,
        }
    }
}
