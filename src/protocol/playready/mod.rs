//! PlayReady-style support. So far the packaging side: the PlayReady Header Object
//! ([`header`]) and Shaka Packager's `AcquirePackagingData` exchange ([`packaging`]).

pub mod header;
pub mod packaging;
