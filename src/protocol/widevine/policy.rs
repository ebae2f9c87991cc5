//! Tessera's neutral policy (`license::policy`) in Widevine-style terms: the licence
//! `Policy`, each key's security level and required output protection, and whether the
//! client's reported HDCP capability can meet the requirement. Pure.

use super::pb;
use super::pb::client_identification::client_capabilities::HdcpVersion;
use super::pb::license::key_container::SecurityLevel as WireLevel;
use crate::keyring::TrackType;
use crate::license::policy::{Hdcp, Policy, SecurityLevel};

/// The licence policy for a new licence (`offline` when the client asked for OFFLINE and
/// the policy allows persistence; the caller has refused the request otherwise).
pub fn license_policy(p: &Policy, offline: bool) -> pb::license::Policy {
    let secs = |v: u64| Some(i64::try_from(v).unwrap_or(i64::MAX));
    pb::license::Policy {
        can_play: Some(p.can_play),
        can_persist: Some(offline && p.can_persist),
        can_renew: Some(p.can_renew),
        rental_duration_seconds: secs(p.rental_duration_secs),
        playback_duration_seconds: secs(p.playback_duration_secs),
        license_duration_seconds: secs(p.license_duration_secs),
        renewal_server_url: p.renewal_url.clone().filter(|_| p.can_renew),
        renewal_delay_seconds: p.can_renew.then(|| secs(p.renewal_interval_secs)).flatten(),
        // Retry a failed renewal a few times within one interval, never more than once a
        // minute nor less than every 10 s.
        renewal_retry_interval_seconds: p
            .can_renew
            .then(|| secs((p.renewal_interval_secs / 4).clamp(10, 60)))
            .flatten(),
        // Keep playing across one missed renewal interval.
        renewal_recovery_duration_seconds: p
            .can_renew
            .then(|| secs(p.renewal_interval_secs))
            .flatten(),
        ..Default::default()
    }
}

/// The wire security level.
pub fn wire_level(l: SecurityLevel) -> WireLevel {
    match l {
        SecurityLevel::SwSecureCrypto => WireLevel::SwSecureCrypto,
        SecurityLevel::SwSecureDecode => WireLevel::SwSecureDecode,
        SecurityLevel::HwSecureCrypto => WireLevel::HwSecureCrypto,
        SecurityLevel::HwSecureDecode => WireLevel::HwSecureDecode,
        SecurityLevel::HwSecureAll => WireLevel::HwSecureAll,
    }
}

fn wire_hdcp(h: Hdcp) -> pb::output_protection::Hdcp {
    use pb::output_protection::Hdcp as W;
    match h {
        Hdcp::None => W::None,
        Hdcp::V1 => W::V1,
        Hdcp::V2 => W::V2,
        Hdcp::V2_1 => W::V21,
        Hdcp::V2_2 => W::V22,
        Hdcp::V2_3 => W::V23,
        Hdcp::NoDigitalOutput => W::NoDigitalOutput,
    }
}

/// `KeyContainer.required_protection` for a key of `track`, or `None` when nothing is required.
pub fn required_protection(p: &Policy, track: Option<TrackType>) -> Option<pb::OutputProtection> {
    let hdcp = p.required_hdcp(track);
    (hdcp != Hdcp::None || p.disable_analog_output).then(|| pb::OutputProtection {
        hdcp: Some(wire_hdcp(hdcp) as i32),
        disable_analog_output: p.disable_analog_output.then_some(true),
        ..Default::default()
    })
}

/// Whether a client reporting `max` (absent: HDCP_NONE) can enforce `required`. A client
/// without digital outputs meets every HDCP requirement; "no digital output" is met only by it.
pub fn hdcp_supported(max: Option<HdcpVersion>, required: Hdcp) -> bool {
    let max = max.unwrap_or(HdcpVersion::HdcpNone);
    if max == HdcpVersion::HdcpNoDigitalOutput {
        return true;
    }
    let rank = |h: HdcpVersion| match h {
        HdcpVersion::HdcpNone => 0,
        HdcpVersion::HdcpV1 => 1,
        HdcpVersion::HdcpV2 => 2,
        HdcpVersion::HdcpV21 => 3,
        HdcpVersion::HdcpV22 => 4,
        HdcpVersion::HdcpV23 => 5,
        HdcpVersion::HdcpNoDigitalOutput => 6,
    };
    let needed = match required {
        Hdcp::None => 0,
        Hdcp::V1 => 1,
        Hdcp::V2 => 2,
        Hdcp::V2_1 => 3,
        Hdcp::V2_2 => 4,
        Hdcp::V2_3 => 5,
        Hdcp::NoDigitalOutput => 6,
    };
    rank(max) >= needed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hdcp_ordering() {
        assert!(hdcp_supported(None, Hdcp::None));
        assert!(!hdcp_supported(None, Hdcp::V1));
        assert!(hdcp_supported(Some(HdcpVersion::HdcpV22), Hdcp::V2_2));
        assert!(!hdcp_supported(Some(HdcpVersion::HdcpV21), Hdcp::V2_2));
        assert!(hdcp_supported(
            Some(HdcpVersion::HdcpNoDigitalOutput),
            Hdcp::NoDigitalOutput
        ));
        assert!(!hdcp_supported(
            Some(HdcpVersion::HdcpV23),
            Hdcp::NoDigitalOutput
        ));
    }

    #[test]
    fn policy_maps_durations_and_renewal() {
        let p = Policy {
            can_persist: true,
            can_renew: true,
            renewal_interval_secs: 300,
            renewal_url: Some("https://lic.example/widevine/license".into()),
            license_duration_secs: 3600,
            ..Policy::default()
        };
        let w = license_policy(&p, false);
        assert_eq!(
            w.can_persist,
            Some(false),
            "streaming licences never persist"
        );
        assert_eq!(w.license_duration_seconds, Some(3600));
        assert_eq!(w.renewal_delay_seconds, Some(300));
        assert_eq!(w.renewal_retry_interval_seconds, Some(60));
        assert!(license_policy(&p, true).can_persist.unwrap());
        let none = license_policy(&Policy::default(), false);
        assert_eq!(
            (none.can_renew, none.renewal_server_url),
            (Some(false), None)
        );
        assert_eq!(
            required_protection(&Policy::default(), Some(TrackType::Hd)),
            None
        );
    }
}
