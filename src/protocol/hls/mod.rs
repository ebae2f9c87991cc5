//! HLS AES-128 / SAMPLE-AES key delivery (RFC 8216 §4.3.2.4, `EXT-X-KEY` with `METHOD=AES-128`
//! or `SAMPLE-AES`, `URI` pointing here): `GET /hls/key/{kid}` answers the 16 raw key bytes.
//!
//! The token comes from `Authorization: Bearer` or, for players that cannot set headers,
//! `?token=` (which then appears in URLs: keep such tokens short-lived and single-use).

pub mod handler;
