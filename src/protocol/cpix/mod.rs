//! SPEKE v2.0 / v2.1 over CPIX 2.3 / 2.4.

pub mod handler;
