//! Integration tests: a real Tessera on ephemeral loopback ports, spoken to over HTTP
//! (STYLE T2). `binary.rs` runs the `tessera` executable itself.

#![expect(clippy::unwrap_used, reason = "test helpers: a panic is a failed test")]

mod auth;
mod binary;
mod browser;
mod clearkey;
mod failure;
mod fairplay;
mod fairplay_device;
mod hls;
mod keyapi;
mod ops;
mod packager;
mod playready;
mod postgres;
mod speke;
mod support;
mod widevine;
