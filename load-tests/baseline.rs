//! The baseline for `load-tests/run.sh`: a bare hyper HTTP/1.1 endpoint on the same runtime
//! shape as Tessera (multi-threaded tokio, one worker per allowed core), which reads the
//! request body and answers a fixed JSON body of a ClearKey licence's size. Whatever Tessera
//! does beyond this (JWT verification, key lookup, policy, metrics, audit) is the difference
//! the runner's ratio measures.
//!
//! Usage: `baseline 127.0.0.1:18090`
//!
//! For the Widevine-style scenario, `BASELINE_WORK_US=<floor>` makes every request spin the
//! CPU for that long (the per-licence crypto floor, measured in the same run) and
//! `BASELINE_BODY_BYTES=<n>` sizes the answer like a licence: the ceiling an HTTP service
//! doing exactly the floor's work reaches on this machine, network and wake-ups included.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

const BODY: &str = r#"{"keys":[{"kty":"oct","kid":"NaDwL1u1i62HQ0Ph5vn1Iw","k":"Sv2iCFV7GAZI7Yve1R4jRQ"}],"type":"temporary"}"#;

static WORK: std::sync::OnceLock<(std::time::Duration, Bytes)> = std::sync::OnceLock::new();

fn work() -> &'static (std::time::Duration, Bytes) {
    WORK.get_or_init(|| {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<f64>().ok());
        let spin = std::time::Duration::from_secs_f64(var("BASELINE_WORK_US").unwrap_or(0.0) / 1e6);
        let body = match var("BASELINE_BODY_BYTES") {
            Some(n) => Bytes::from(vec![b'x'; n as usize]),
            None => Bytes::from_static(BODY.as_bytes()),
        };
        (spin, body)
    })
}

async fn handle(req: hyper::Request<Incoming>) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    // Read the body, as a licence endpoint must.
    let _ = req.into_body().collect().await;
    let (spin, body) = work();
    if !spin.is_zero() {
        let start = std::time::Instant::now();
        while start.elapsed() < *spin {
            std::hint::spin_loop();
        }
    }
    let mut resp = hyper::Response::new(Full::new(body.clone()));
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
