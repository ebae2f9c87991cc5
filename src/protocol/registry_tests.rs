//! The registration list is the only place a protocol is wired: these tests fail when a
//! registered route, metric label, denial code or configuration section is not wired into
//! the router, the metrics or the configuration, or not documented.

use super::*;
use crate::http::router::{self, ROUTER, Target};
use crate::telemetry::Metrics;

const PROTOCOLS_MD: &str = include_str!("../../docs/protocols.md");
const CONFIGURATION_MD: &str = include_str!("../../docs/configuration.md");

/// A concrete path for a pattern (`{kid}` becomes a value).
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|s| if s.starts_with('{') { "x1" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_registered_route_is_routed_to_its_protocol_and_only_on_its_listener() {
    let table = table();
    assert!(!table.is_empty());
    for e in &table {
        for path in e.paths {
            for method in e.methods {
                let method = http::Method::from_bytes(method.as_bytes()).unwrap();
                let concrete = concrete(path);
                let r = router::route(e.listener, &method, &concrete);
                assert_eq!(
                    (r.target, r.endpoint.as_str(), r.method_ok),
                    (Target::Protocol(e.target), e.endpoint, true),
                    "{method} {path} of {}",
                    e.protocol
                );
                let other = match e.listener {
                    Listener::Public => Listener::Internal,
                    Listener::Internal => Listener::Public,
                };
                assert_eq!(
                    router::route(other, &method, &concrete).target,
                    Target::Unmatched,
                    "{path} must not answer on the {} listener",
                    other.as_str()
                );
            }
            if path.contains('{') {
                assert_eq!(
                    router::route(
                        e.listener,
                        &http::Method::GET,
                        path.trim_end_matches(|c| c != '/')
                    )
                    .target,
                    Target::Unmatched,
                    "{path} with an empty parameter"
                );
            }
        }
        // The dispatch finds the route the table names.
        assert!(e.target.route < table.iter().filter(|x| x.protocol == e.protocol).count());
    }
}

#[test]
fn every_label_and_code_is_registered_in_the_metrics() {
    let metrics = Metrics::new(
        ROUTER.labels(),
        &licence_protocols(),
        &DENIAL_CODES.concat(),
    );
    for (i, label) in ROUTER.labels().iter().enumerate() {
        metrics.request(i, 200, 0.001);
        let text = String::from_utf8(metrics.render()).unwrap();
        assert!(
            text.contains(&format!(
                "tessera_http_requests_total{{endpoint=\"{label}\",status_class=\"2xx\"}} 1"
            )),
            "endpoint {label} is not counted"
        );
    }
    for (name, licences) in NAMES {
        metrics.license(name, 2);
        let text = String::from_utf8(metrics.render()).unwrap();
        assert_eq!(
            text.contains(&format!(
                "tessera_licenses_issued_total{{protocol=\"{name}\"}} 1"
            )),
            *licences,
            "licences of {name}"
        );
    }
    for code in DENIAL_CODES.concat() {
        metrics.denial(code);
        let text = String::from_utf8(metrics.render()).unwrap();
        assert!(
            text.contains(&format!(
                "tessera_auth_denials_total{{reason=\"{code}\"}} 1"
            )),
            "denial {code} is not counted"
        );
    }
}

#[test]
fn every_route_code_and_section_is_documented() {
    for e in table() {
        for path in e.paths {
            assert!(
                PROTOCOLS_MD.contains(&format!("`{path}`"))
                    || PROTOCOLS_MD.contains(&format!(" {path}`")),
                "docs/protocols.md does not document {path} ({})",
                e.protocol
            );
        }
    }
    for code in DENIAL_CODES.concat() {
        assert!(
            PROTOCOLS_MD.contains(&format!("`{code}`")),
            "docs/protocols.md does not document the denial code {code}"
        );
    }
    for key in Sections::KEYS.iter().flatten() {
        assert!(
            CONFIGURATION_MD.contains(&format!("## `[{key}]`")),
            "docs/configuration.md has no section for [{key}]"
        );
    }
    for key in TenantSections::KEYS.iter().flatten() {
        assert!(
            CONFIGURATION_MD.contains(&format!("### `[[tenants.{key}]]`")),
            "docs/configuration.md has no section for [[tenants.{key}]]"
        );
    }
}

#[test]
fn protocol_sections_are_read_and_unknown_keys_still_refused() {
    let tenant = r#"
        [[tenants]]
        id = "a"
        issuers = ["https://idp"]
        audiences = ["tessera"]
        [[tenants.keys]]
        algorithms = ["HS256"]
        secret = "0123456789abcdef0123456789abcdef"
    "#;
    let cfg = Config::from_toml(&format!(
        "[widevine]\nsession_max_age_secs = 7\n[playready]\ndevice_cache_capacity = 9\n{tenant}\
         [[tenants.widevine_signers]]\nname = \"s\"\n"
    ))
    .unwrap();
    assert_eq!(cfg.protocols.widevine.session_max_age_secs, 7);
    assert_eq!(cfg.protocols.playready.device_cache_capacity, 9);
    assert_eq!(cfg.tenants[0].protocols.widevine_keys[0].name, "s");
    assert_eq!(cfg.tenants[0].leeway_secs, 30, "the default leeway");
    let e = Config::from_toml(&format!("[widevin]\nroots = []\n{tenant}")).unwrap_err();
    assert!(
        e.contains("unknown field `widevin`") && e.contains("`widevine`"),
        "{e}"
    );
    let e = Config::from_toml(&format!("{tenant}widevine_signer = []\n")).unwrap_err();
    assert!(e.contains("unknown field `widevine_signer`"), "{e}");
    let e = Config::from_toml("[widevine]\nroot = []\n").unwrap_err();
    assert!(e.contains("unknown field `root`"), "{e}");
}
