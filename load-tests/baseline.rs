//! The baseline for `load-tests/run.sh`: a bare hyper HTTP/1.1 endpoint on the same runtime
//! shape as Tessera (multi-threaded tokio, one worker per allowed core), which reads the
//! request body and answers a fixed JSON body of a ClearKey licence's size. Whatever Tessera
//! does beyond this (JWT verification, key lookup, policy, metrics, audit) is the difference
//! the runner's ratio measures.
//!
//! Usage: `baseline 127.0.0.1:18090`

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

const BODY: &str = r#"{"keys":[{"kty":"oct","kid":"NaDwL1u1i62HQ0Ph5vn1Iw","k":"Sv2iCFV7GAZI7Yve1R4jRQ"}],"type":"temporary"}"#;

async fn handle(req: hyper::Request<Incoming>) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    // Read the body, as a licence endpoint must.
    let _ = req.into_body().collect().await;
    let mut resp = hyper::Response::new(Full::new(Bytes::from_static(BODY.as_bytes())));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18090".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("baseline listening {addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), hyper::service::service_fn(handle))
                .await;
        });
    }
}
