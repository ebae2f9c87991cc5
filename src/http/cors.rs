//! CORS for the public listener (Fetch standard, "CORS protocol").
//!
//! Browsers send licence requests with `Authorization`, which is not a CORS-safelisted header,
//! so every request is preflighted, and `Access-Control-Allow-Headers: *` would NOT cover it:
//! we list `Authorization` by name. Origins are allowed per tenant, but a preflight carries no
//! token, so it is answered for the union of all tenants' origins; the actual response then
//! allows the origin only if the token's tenant does (or, before a token is verified, the
//! union again, so that the browser lets the player read our error).

use http::{HeaderMap, HeaderValue, header};
use std::collections::HashSet;

/// Allowed origins, per tenant and in union.
#[derive(Debug, Default)]
pub struct Cors {
    per_tenant: Vec<Origins>,
    union: Origins,
}

#[derive(Debug, Default, Clone)]
struct Origins {
    any: bool,
    set: HashSet<String>,
}

impl Origins {
    fn allows(&self, origin: &str) -> bool {
        self.any || self.set.contains(origin)
    }
}

/// Headers a licence request may carry.
const ALLOW_HEADERS: &str = "Authorization, Content-Type";
const ALLOW_METHODS: &str = "GET, POST, OPTIONS";
const MAX_AGE: &str = "600";

impl Cors {
    /// Builds from each tenant's `cors_allowed_origins` (tenant index = position).
    pub fn new(tenants: &[Vec<String>]) -> Self {
        let mut union = Origins::default();
        let per_tenant = tenants
            .iter()
            .map(|list| {
                let mut o = Origins::default();
                for origin in list {
                    if origin == "*" {
                        o.any = true;
                    } else {
                        o.set.insert(origin.trim_end_matches('/').to_owned());
                    }
                }
                union.any |= o.any;
                union.set.extend(o.set.iter().cloned());
                o
            })
            .collect();
        Self { per_tenant, union }
    }

    fn allowed(&self, tenant: Option<u32>, origin: &str) -> bool {
        match tenant.and_then(|t| self.per_tenant.get(t as usize)) {
            Some(o) => o.allows(origin),
            None => self.union.allows(origin),
        }
    }

    /// Answers a preflight: `Some(headers)` when the origin is allowed by some tenant.
    pub fn preflight(&self, req: &HeaderMap) -> Option<HeaderMap> {
        let origin = req.get(header::ORIGIN)?.to_str().ok()?;
        if !self.union.allows(origin) {
            return None;
        }
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_str(origin).ok()?,
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE),
        );
        h.insert(
            header::VARY,
            HeaderValue::from_static("Origin, Access-Control-Request-Headers"),
        );
        Some(h)
    }

    /// Adds CORS headers to an actual response (success or error).
    pub fn decorate(
        &self,
        req_origin: Option<&HeaderValue>,
        tenant: Option<u32>,
        resp: &mut HeaderMap,
    ) {
        resp.append(header::VARY, HeaderValue::from_static("Origin"));
        let Some(origin) = req_origin else { return };
        let Ok(text) = origin.to_str() else { return };
        if self.allowed(tenant, text) {
            resp.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            resp.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("x-request-id"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_tenant_and_union() {
        let cors = Cors::new(&[
            vec!["https://a.example".into()],
            vec!["https://b.example/".into()],
        ]);
        let mut req = HeaderMap::new();
        req.insert(header::ORIGIN, "https://b.example".parse().unwrap());
        let pre = cors.preflight(&req).unwrap();
        assert_eq!(pre[header::ACCESS_CONTROL_ALLOW_HEADERS], ALLOW_HEADERS);
        assert!(
            pre[header::ACCESS_CONTROL_ALLOW_HEADERS]
                .to_str()
                .unwrap()
                .contains("Authorization")
        );
        let origin = req.get(header::ORIGIN);
        let mut resp = HeaderMap::new();
        cors.decorate(origin, Some(0), &mut resp);
        assert!(
            resp.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
            "tenant 0 does not allow b"
        );
        let mut resp = HeaderMap::new();
        cors.decorate(origin, Some(1), &mut resp);
        assert_eq!(
            resp[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://b.example"
        );
        req.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(cors.preflight(&req).is_none());
    }
}
