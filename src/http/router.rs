//! Routes: the public contract of `docs/architecture.md` ("Listeners and paths"). Key APIs
//! are never reachable on the public listener; licences never on the internal one.

use http::Method;

/// Which listener a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// Players: licences only, CORS.
    Public,
    /// Packagers and operators: key API, metrics, health.
    Internal,
}

impl Listener {
    /// Name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Public => "public",
            Listener::Internal => "internal",
        }
    }
}

/// A routed endpoint; also the `endpoint` metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /clearkey/license`
    ClearKeyLicense,
    /// `GET /hls/key/{kid}`
    HlsKey,
    /// `POST /widevine/license`
    WidevineLicense,
    /// `POST /fairplay/license` (alias `/fairplay/ckc`)
    FairPlayLicense,
    /// `GET /fairplay/certificate`
    FairPlayCertificate,
    /// `POST /playready/license` (alias `/playready/rightsmanager.asmx`)
    PlayReadyLicense,
    /// `OPTIONS` on a public path.
    Preflight,
    /// `POST /widevine/cenc/getcontentkey/{tenant}`
    WidevineKeys,
    /// `POST /playready/packaging/{tenant}`
    PlayReadyPackaging,
    /// `POST /speke/v2`
    Speke,
    /// `POST /v1/keys`
    KeysCreate,
    /// `GET /v1/keys?content_id=`
    KeysList,
    /// `GET /v1/keys/{kid}`
    KeysGet,
    /// `POST /v1/keys/{kid}/revoke`
    KeysRevoke,
    /// `GET /metrics`
    Metrics,
    /// `GET /healthz`
    Healthz,
    /// `GET /readyz`
    Readyz,
    /// Anything else.
    Unmatched,
}

impl Endpoint {
    /// Every endpoint, in metric-index order.
    pub const ALL: [Endpoint; 18] = [
        Endpoint::ClearKeyLicense,
        Endpoint::HlsKey,
        Endpoint::WidevineLicense,
        Endpoint::FairPlayLicense,
        Endpoint::FairPlayCertificate,
        Endpoint::PlayReadyLicense,
        Endpoint::Preflight,
        Endpoint::WidevineKeys,
        Endpoint::PlayReadyPackaging,
        Endpoint::Speke,
        Endpoint::KeysCreate,
        Endpoint::KeysList,
        Endpoint::KeysGet,
        Endpoint::KeysRevoke,
        Endpoint::Metrics,
        Endpoint::Healthz,
        Endpoint::Readyz,
        Endpoint::Unmatched,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::ClearKeyLicense => "clearkey_license",
            Endpoint::HlsKey => "hls_key",
            Endpoint::WidevineLicense => "widevine_license",
            Endpoint::FairPlayLicense => "fairplay_license",
            Endpoint::FairPlayCertificate => "fairplay_certificate",
            Endpoint::PlayReadyLicense => "playready_license",
            Endpoint::Preflight => "cors_preflight",
            Endpoint::WidevineKeys => "widevine_keys",
            Endpoint::PlayReadyPackaging => "playready_packaging",
            Endpoint::Speke => "speke",
            Endpoint::KeysCreate => "keys_create",
            Endpoint::KeysList => "keys_list",
            Endpoint::KeysGet => "keys_get",
            Endpoint::KeysRevoke => "keys_revoke",
            Endpoint::Metrics => "metrics",
            Endpoint::Healthz => "healthz",
            Endpoint::Readyz => "readyz",
            Endpoint::Unmatched => "unmatched",
        }
    }

    /// Index into metric arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Result of routing: the endpoint, the path parameter if any, and whether the method fits.
#[derive(Debug, PartialEq, Eq)]
pub struct Route<'p> {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// `{kid}` when the path has one.
    pub param: Option<&'p str>,
    /// False when the path exists but not with this method (405).
    pub method_ok: bool,
    /// The methods the path answers to (the `Allow` header of a 405).
    pub allow: &'static str,
}

/// Routes a request.
pub fn route<'p>(listener: Listener, method: &Method, path: &'p str) -> Route<'p> {
    const UNMATCHED: Route<'static> = Route {
        endpoint: Endpoint::Unmatched,
        param: None,
        method_ok: true,
        allow: "",
    };
    // At most four segments matter; a longer path matches nothing. No allocation per request.
    let mut buf = [""; 4];
    let mut n = 0;
    for seg in path.trim_start_matches('/').split('/') {
        if n == buf.len() {
            return UNMATCHED;
        }
        buf[n] = seg;
        n += 1;
    }
    let get = method == Method::GET || method == Method::HEAD;
    let (endpoint, param, allow) = match (listener, &buf[..n]) {
        (Listener::Public, ["clearkey", "license"]) => (Endpoint::ClearKeyLicense, None, "POST"),
        (Listener::Public, ["hls", "key", kid]) if !kid.is_empty() => {
            (Endpoint::HlsKey, Some(*kid), "GET")
        }
        (Listener::Public, ["widevine", "license"]) => (Endpoint::WidevineLicense, None, "POST"),
        (Listener::Public, ["fairplay", "license" | "ckc"]) => {
            (Endpoint::FairPlayLicense, None, "POST")
        }
        (Listener::Public, ["playready", "license" | "rightsmanager.asmx"]) => {
            (Endpoint::PlayReadyLicense, None, "POST")
        }
        (Listener::Public, ["fairplay", "certificate"]) => {
            (Endpoint::FairPlayCertificate, None, "GET, HEAD")
        }
        (Listener::Internal, ["widevine", "cenc", "getcontentkey", tenant])
            if !tenant.is_empty() =>
        {
            (Endpoint::WidevineKeys, Some(*tenant), "POST")
        }
        (Listener::Internal, ["playready", "packaging", tenant]) if !tenant.is_empty() => {
            (Endpoint::PlayReadyPackaging, Some(*tenant), "POST")
        }
        (Listener::Internal, ["speke", "v2"]) => (Endpoint::Speke, None, "POST"),
        (Listener::Internal, ["v1", "keys"]) if get => (Endpoint::KeysList, None, "GET, POST"),
        (Listener::Internal, ["v1", "keys"]) => (Endpoint::KeysCreate, None, "GET, POST"),
        (Listener::Internal, ["v1", "keys", kid]) if !kid.is_empty() => {
            (Endpoint::KeysGet, Some(*kid), "GET")
        }
        (Listener::Internal, ["v1", "keys", kid, "revoke"]) if !kid.is_empty() => {
            (Endpoint::KeysRevoke, Some(*kid), "POST")
        }
        (Listener::Internal, ["metrics"]) => (Endpoint::Metrics, None, "GET"),
        (Listener::Internal, ["healthz"]) => (Endpoint::Healthz, None, "GET, HEAD"),
        (Listener::Internal, ["readyz"]) => (Endpoint::Readyz, None, "GET, HEAD"),
        _ => return UNMATCHED,
    };
    if listener == Listener::Public && method == Method::OPTIONS {
        return Route {
            endpoint: Endpoint::Preflight,
            param,
            method_ok: true,
            allow,
        };
    }
    let method_ok = allow.split(", ").any(|m| m == method.as_str());
    Route {
        endpoint,
        param,
        method_ok,
        allow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_are_separate() {
        let r = route(Listener::Public, &Method::POST, "/clearkey/license");
        assert_eq!((r.endpoint, r.method_ok), (Endpoint::ClearKeyLicense, true));
        assert_eq!(
            route(Listener::Public, &Method::GET, "/v1/keys").endpoint,
            Endpoint::Unmatched
        );
        assert_eq!(
            route(Listener::Internal, &Method::POST, "/clearkey/license").endpoint,
            Endpoint::Unmatched
        );
        assert_eq!(
            route(Listener::Public, &Method::GET, "/metrics").endpoint,
            Endpoint::Unmatched
        );
        let r = route(Listener::Internal, &Method::POST, "/v1/keys/abc/revoke");
        assert_eq!((r.endpoint, r.param), (Endpoint::KeysRevoke, Some("abc")));
        assert!(!route(Listener::Public, &Method::GET, "/clearkey/license").method_ok);
        assert_eq!(
            route(Listener::Public, &Method::OPTIONS, "/hls/key/x").endpoint,
            Endpoint::Preflight
        );
        assert_eq!(
            route(Listener::Internal, &Method::GET, "/v1/keys").endpoint,
            Endpoint::KeysList
        );
        assert!(!route(Listener::Internal, &Method::DELETE, "/v1/keys").method_ok);
    }
}
