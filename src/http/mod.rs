//! HTTP: the two listeners' accept loops, routing, bodies, CORS, error rendering.

pub mod admin;
pub mod body;
pub mod cors;
pub mod error;
pub mod router;
mod server;

pub use server::{Ctx, serve, tls_acceptor};
