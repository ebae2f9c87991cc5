//! The neutral licence policy (`docs/tokens.md`, "Policies"): one model that each
//! DRM's licence fields are mapped from. ClearKey and HLS use the parts that apply to a
//! software client (allowed tracks, persistence, minimum security level); Widevine-,
//! PlayReady- and FairPlay-style licences map the rest.

use crate::keyring::TrackType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Robustness levels, ordered weakest first (Widevine's names; PlayReady's SL150/2000/3000 map
/// onto SW_SECURE_CRYPTO / SW_SECURE_DECODE..HW_SECURE_CRYPTO / HW_SECURE_ALL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SecurityLevel {
    /// Software crypto (any client, ClearKey included).
    SwSecureCrypto,
    /// Software crypto and decode.
    SwSecureDecode,
    /// Crypto in a hardware TEE.
    HwSecureCrypto,
    /// Crypto and decode in hardware.
    HwSecureDecode,
    /// Crypto, decode and all media handling in hardware.
    HwSecureAll,
}

/// Required HDCP version on digital outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Hdcp {
    /// No requirement.
    #[serde(rename = "NONE")]
    None,
    /// HDCP 1.x.
    #[serde(rename = "V1")]
    V1,
    /// HDCP 2.0.
    #[serde(rename = "V2")]
    V2,
    /// HDCP 2.1.
    #[serde(rename = "V2.1")]
    V2_1,
    /// HDCP 2.2.
    #[serde(rename = "V2.2")]
    V2_2,
    /// HDCP 2.3.
    #[serde(rename = "V2.3")]
    V2_3,
    /// No digital output at all.
    #[serde(rename = "NO_DIGITAL_OUTPUT")]
    NoDigitalOutput,
}

/// A licence policy. Every field has a permissive-but-bounded default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Allow playback (false issues no keys: useful to suspend an offer).
    pub can_play: bool,
    /// Allow persistent (offline) licences.
    pub can_persist: bool,
    /// Allow renewal.
    pub can_renew: bool,
    /// Licence lifetime in seconds; 0 = unlimited.
    pub license_duration_secs: u64,
    /// Rental window in seconds from licence receipt; 0 = unlimited.
    pub rental_duration_secs: u64,
    /// Playback window in seconds from first playback; 0 = unlimited.
    pub playback_duration_secs: u64,
    /// Renewal interval in seconds (when `can_renew`).
    pub renewal_interval_secs: u64,
    /// Renewal server URL (when `can_renew`).
    pub renewal_url: Option<String>,
    /// Track types this policy releases; empty = all.
    pub allowed_tracks: Vec<TrackType>,
    /// Minimum client security level for every track...
    pub min_security_level: SecurityLevel,
    /// ...raised per track type here (e.g. `UHD1 = "HW_SECURE_ALL"`).
    pub track_security_level: BTreeMap<TrackType, SecurityLevel>,
    /// Required HDCP per track type.
    pub hdcp: BTreeMap<TrackType, Hdcp>,
    /// Disallow analog outputs.
    pub disable_analog_output: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            can_play: true,
            can_persist: false,
            can_renew: false,
            license_duration_secs: 0,
            rental_duration_secs: 0,
            playback_duration_secs: 0,
            renewal_interval_secs: 0,
            renewal_url: None,
            allowed_tracks: Vec::new(),
            min_security_level: SecurityLevel::SwSecureCrypto,
            track_security_level: BTreeMap::new(),
            hdcp: BTreeMap::new(),
            disable_analog_output: false,
        }
    }
}

/// Why a policy is inconsistent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Renewal allowed with no interval.
    #[error("can_renew needs renewal_interval_secs > 0")]
    RenewalInterval,
    /// A renewal URL that is not http(s).
    #[error("renewal_url must be an http(s) URL")]
    RenewalUrl,
}

impl Policy {
    /// Checks internal consistency.
    pub fn validate(&self) -> Result<(), Error> {
        if self.can_renew && self.renewal_interval_secs == 0 {
            return Err(Error::RenewalInterval);
        }
        if let Some(url) = &self.renewal_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(Error::RenewalUrl);
        }
        Ok(())
    }

    /// The minimum security level a client must have to receive a key of `track`.
    pub fn required_level(&self, track: Option<TrackType>) -> SecurityLevel {
        let per_track = track.and_then(|t| self.track_security_level.get(&t).copied());
        per_track.map_or(self.min_security_level, |l| l.max(self.min_security_level))
    }

    /// The HDCP a client must enforce for `track`.
    pub fn required_hdcp(&self, track: Option<TrackType>) -> Hdcp {
        track
            .and_then(|t| self.hdcp.get(&t).copied())
            .unwrap_or(Hdcp::None)
    }

    /// Whether the policy releases keys of `track` at all. A key with no track type is
    /// released only by a policy that allows every track.
    pub fn allows_track(&self, track: Option<TrackType>) -> bool {
        self.allowed_tracks.is_empty() || track.is_some_and(|t| self.allowed_tracks.contains(&t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_tracks() {
        let p: Policy = toml::from_str(
            r#"
            allowed_tracks = ["SD", "HD"]
            min_security_level = "SW_SECURE_DECODE"
            [track_security_level]
            HD = "HW_SECURE_ALL"
            SD = "SW_SECURE_CRYPTO"
            [hdcp]
            HD = "V2.2"
            "#,
        )
        .unwrap();
        assert_eq!(
            p.required_level(Some(TrackType::Hd)),
            SecurityLevel::HwSecureAll
        );
        // A per-track level never lowers the global minimum.
        assert_eq!(
            p.required_level(Some(TrackType::Sd)),
            SecurityLevel::SwSecureDecode
        );
        assert_eq!(p.required_hdcp(Some(TrackType::Hd)), Hdcp::V2_2);
        assert!(p.allows_track(Some(TrackType::Sd)));
        assert!(!p.allows_track(Some(TrackType::Audio)));
        assert!(!p.allows_track(None));
        assert!(Policy::default().allows_track(None));
        assert!(toml::from_str::<Policy>("bogus = 1").is_err());
    }
}
