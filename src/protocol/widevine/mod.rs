//! Widevine-style licences (drm-interop.md §1).
pub mod pb;
pub mod license;
pub mod message;
