//! Wire protocols, one folder each: a pure codec (no tokio, hyper, store or clock: STYLE P1)
//! and a thin handler that does the I/O through [`crate::app::App`].

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

/// Protocol names used as metric labels and in audit records.
pub const PROTOCOLS: [&str; 6] = [
    "clearkey",
    "fairplay",
    "hls",
    "keyapi",
    "playready",
    "widevine",
];
