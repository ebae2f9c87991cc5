//! W3C ClearKey licences (Encrypted Media Extensions, §9.1 "Clear Key"; licence request
//! format §9.1.3, licence format §9.1.4).
//!
//! `POST /clearkey/license` takes `{"kids":[b64url],"type":...}` and answers a JWK set of the
//! requested keys the token entitles, omitting the rest; 403 when none is (see
//! `docs/protocols.md`, "ClearKey").

pub mod handler;
pub mod message;
