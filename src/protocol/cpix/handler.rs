//! `POST /speke/v2`.
use crate::app::App;
use crate::http::Ctx;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;

/// The handler.
pub async fn handle(_app: &App, _req: Request<Incoming>, _ctx: &mut Ctx) -> Response<Full<Bytes>> {
    crate::http::error::problem(
        &crate::http::error::Error::NotFound as &dyn crate::http::error::ApiError,
    )
}
