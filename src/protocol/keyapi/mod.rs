//! The REST key API on the internal listener (`docs/protocols.md`, "Key API"): create
//! (generate) or import content keys, read them, list them by content id, revoke them.
//! Service tokens with `keys:write` / `keys:read` (or `admin`).

pub mod handler;
pub mod message;
pub mod provision;
