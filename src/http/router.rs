//! Routes: the public contract of `docs/architecture.md` ("Listeners and paths"). Key APIs
//! are never reachable on the public listener; licences never on the internal one.
//!
//! The table is data: every protocol's [`RouteSpec`]s (`crate::protocol::table`) and the
//! operations endpoints ([`super::admin::ROUTES`]), compiled once into [`ROUTER`]. Each
//! route's `endpoint` is also its metric label, so the label set of
//! `tessera_http_requests_total` comes from the same table and cannot drift from it.

use super::admin::Admin;
use crate::protocol::{RouteRef, RouteSpec};
use http::Method;
use std::sync::LazyLock;

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

/// A routed endpoint: an index into [`Router::labels`], the `endpoint` metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint(usize);

impl Endpoint {
    /// Index into the metric arrays.
    pub fn index(self) -> usize {
        self.0
    }

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        ROUTER.labels.get(self.0).copied().unwrap_or("unmatched")
    }
}

/// Where a matched request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A protocol's route.
    Protocol(RouteRef),
    /// An operations endpoint.
    Admin(Admin),
    /// `OPTIONS` on a public path: CORS preflight.
    Preflight,
    /// No such path.
    Unmatched,
}

/// Result of routing.
#[derive(Debug, PartialEq, Eq)]
pub struct Route<'p> {
    /// The endpoint (metric label).
    pub endpoint: Endpoint,
    /// Where it goes.
    pub target: Target,
    /// The `{name}` segment of the path, when it has one.
    pub param: Option<&'p str>,
    /// False when the path exists but not with this method (405).
    pub method_ok: bool,
    /// The methods the path answers to (the `Allow` header of a 405).
    pub allow: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Literal(&'static str),
    Param,
}

#[derive(Debug)]
struct Compiled {
    listener: Listener,
    segments: Vec<Segment>,
    methods: &'static [&'static str],
    /// Every method of every route with this listener and pattern, in table order.
    allow: String,
    endpoint: Endpoint,
    target: Target,
}

/// The compiled route table.
#[derive(Debug)]
pub struct Router {
    routes: Vec<Compiled>,
    labels: Vec<&'static str>,
    preflight: Endpoint,
    unmatched: Endpoint,
}

/// Longest route, in segments: a longer path is refused before any comparison.
const MAX_SEGMENTS: usize = 4;

/// The table, compiled on first use from the registered protocols and the admin routes.
pub static ROUTER: LazyLock<Router> = LazyLock::new(|| {
    let mut rows: Vec<Row> = crate::protocol::table()
        .into_iter()
        .map(|e| Row {
            endpoint: e.endpoint,
            listener: e.listener,
            methods: e.methods,
            paths: e.paths,
            target: Target::Protocol(e.target),
        })
        .collect();
    rows.extend(super::admin::ROUTES.iter().map(|r: &RouteSpec<Admin>| Row {
        endpoint: r.endpoint,
        listener: r.listener,
        methods: r.methods,
        paths: r.paths,
        target: Target::Admin(r.route),
    }));
    Router::new(&rows)
});

/// One route of the table, whoever declared it.
struct Row {
    endpoint: &'static str,
    listener: Listener,
    methods: &'static [&'static str],
    paths: &'static [&'static str],
    target: Target,
}

fn parse(path: &'static str) -> Vec<Segment> {
    path.trim_start_matches('/')
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                Segment::Param
            } else {
                Segment::Literal(s)
            }
        })
        .collect()
}

impl Router {
    fn new(table: &[Row]) -> Self {
        let mut labels = Vec::new();
        let mut routes = Vec::new();
        for row in table {
            let endpoint = Endpoint(labels.len());
            labels.push(row.endpoint);
            for path in row.paths {
                routes.push(Compiled {
                    listener: row.listener,
                    segments: parse(path),
                    methods: row.methods,
                    allow: String::new(),
                    endpoint,
                    target: row.target,
                });
            }
        }
        // `Allow` of each pattern, computed once.
        for i in 0..routes.len() {
            let mut methods: Vec<&str> = Vec::new();
            for r in &routes {
                if r.listener == routes[i].listener && r.segments == routes[i].segments {
                    for m in r.methods {
                        if !methods.contains(m) {
                            methods.push(m);
                        }
                    }
                }
            }
            routes[i].allow = methods.join(", ");
        }
        let preflight = Endpoint(labels.len());
        labels.push("cors_preflight");
        let unmatched = Endpoint(labels.len());
        labels.push("unmatched");
        Self {
            routes,
            labels,
            preflight,
            unmatched,
        }
    }

    /// Every endpoint's metric label, in index order.
    pub fn labels(&self) -> &[&'static str] {
        &self.labels
    }

    /// Routes a request. No allocation: the path is split into at most
    /// `MAX_SEGMENTS` borrowed segments and compared with the table.
    pub fn route<'p>(
        &'static self,
        listener: Listener,
        method: &Method,
        path: &'p str,
    ) -> Route<'p> {
        let unmatched = Route {
            endpoint: self.unmatched,
            target: Target::Unmatched,
            param: None,
            method_ok: true,
            allow: "",
        };
        let mut buf = [""; MAX_SEGMENTS];
        let mut n = 0;
        for seg in path.trim_start_matches('/').split('/') {
            if n == buf.len() {
                return unmatched;
            }
            buf[n] = seg;
            n += 1;
        }
        let segs = &buf[..n];
        let mut first_match: Option<(&'static Compiled, Option<&'p str>)> = None;
        for r in &self.routes {
            if r.listener != listener || r.segments.len() != n {
                continue;
            }
            let Some(param) = matches(&r.segments, segs) else {
                continue;
            };
            if listener == Listener::Public && method == Method::OPTIONS {
                return Route {
                    endpoint: self.preflight,
                    target: Target::Preflight,
                    param,
                    method_ok: true,
                    allow: &r.allow,
                };
            }
            if r.methods.iter().any(|m| *m == method.as_str()) {
                return Route {
                    endpoint: r.endpoint,
                    target: r.target,
                    param,
                    method_ok: true,
                    allow: &r.allow,
                };
            }
            first_match.get_or_insert((r, param));
        }
        match first_match {
            Some((r, param)) => Route {
                endpoint: r.endpoint,
                target: r.target,
                param,
                method_ok: false,
                allow: &r.allow,
            },
            None => unmatched,
        }
    }
}

/// `Some(param)` when `segs` fit the pattern (a parameter matches one non-empty segment).
fn matches<'p>(pattern: &[Segment], segs: &[&'p str]) -> Option<Option<&'p str>> {
    let mut param = None;
    for (p, s) in pattern.iter().zip(segs) {
        match p {
            Segment::Literal(l) if l == s => {}
            Segment::Param if !s.is_empty() => param = Some(*s),
            _ => return None,
        }
    }
    Some(param)
}

/// Routes a request with the process-wide table.
pub fn route<'p>(listener: Listener, method: &Method, path: &'p str) -> Route<'p> {
    ROUTER.route(listener, method, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(r: &Route<'_>) -> &'static str {
        r.endpoint.as_str()
    }

    #[test]
    fn listeners_are_separate() {
        let r = route(Listener::Public, &Method::POST, "/clearkey/license");
        assert_eq!((label(&r), r.method_ok), ("clearkey_license", true));
        assert_eq!(
            route(Listener::Public, &Method::GET, "/v1/keys").target,
            Target::Unmatched
        );
        assert_eq!(
            route(Listener::Internal, &Method::POST, "/clearkey/license").target,
            Target::Unmatched
        );
        assert_eq!(
            route(Listener::Public, &Method::GET, "/metrics").target,
            Target::Unmatched
        );
        let r = route(Listener::Internal, &Method::POST, "/v1/keys/abc/revoke");
        assert_eq!((label(&r), r.param), ("keys_revoke", Some("abc")));
        assert!(!route(Listener::Public, &Method::GET, "/clearkey/license").method_ok);
        let r = route(Listener::Public, &Method::OPTIONS, "/hls/key/x");
        assert_eq!((r.target, label(&r)), (Target::Preflight, "cors_preflight"));
        assert_eq!(
            label(&route(Listener::Internal, &Method::GET, "/v1/keys")),
            "keys_list"
        );
        let r = route(Listener::Internal, &Method::DELETE, "/v1/keys");
        assert_eq!((r.method_ok, r.allow), (false, "GET, POST"));
        assert_eq!(
            route(Listener::Public, &Method::GET, "/hls/key/").target,
            Target::Unmatched,
            "a parameter is never empty"
        );
        assert_eq!(
            route(Listener::Public, &Method::GET, "/a/b/c/d/e").target,
            Target::Unmatched
        );
        let r = route(Listener::Public, &Method::POST, "/fairplay/ckc");
        assert_eq!(label(&r), "fairplay_license", "aliases share the endpoint");
        assert_eq!(
            route(Listener::Internal, &Method::HEAD, "/healthz").target,
            Target::Admin(Admin::Healthz)
        );
    }

    #[test]
    fn labels_are_unique_and_end_with_the_pseudo_endpoints() {
        let labels = ROUTER.labels();
        let mut seen = std::collections::HashSet::new();
        for l in labels {
            assert!(seen.insert(l), "endpoint label {l} is used twice");
        }
        assert_eq!(
            &labels[labels.len() - 2..],
            &["cors_preflight", "unmatched"]
        );
    }
}
