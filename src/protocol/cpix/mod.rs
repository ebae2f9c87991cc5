//! SPEKE v2.0 / v2.1 over CPIX 2.3 / 2.4 on the internal listener (`POST /speke/v2`):
//! packagers and encryptors (AWS Elemental MediaPackage and MediaConvert, or any SPEKE v2
//! client) get keys and the DRM signalling for Widevine, PlayReady, FairPlay, HLS AES-128 and
//! the W3C common PSSH in one document (`docs/protocols.md`, "SPEKE").

pub mod delivery;
pub mod document;
pub mod handler;
