//! Request bodies, collected under a size cap *before* any parser sees a byte (STYLE S5).

use super::error::Error;
use crate::encoding::{Plus, percent_decode};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

/// Collects `body`, refusing more than `limit` bytes or taking longer than `deadline` (the
/// header-read timeout does not cover bodies: without this, a client trickling a body holds
/// a connection slot forever). A `Content-Length` over the limit is refused without reading.
pub async fn collect<B>(
    headers: &http::HeaderMap,
    body: B,
    limit: usize,
    deadline: std::time::Duration,
) -> Result<Bytes, Error>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if let Some(len) = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(Error::BodyTooLarge(limit));
    }
    let collected = tokio::time::timeout(deadline, Limited::new(body, limit).collect())
        .await
        .map_err(|_| Error::BodyTimeout)?;
    match collected {
        Ok(b) => Ok(b.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(Error::BodyTooLarge(limit))
        }
        Err(_) => Err(Error::BodyRead),
    }
}

/// The bearer token of `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1).
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A query parameter's value (first occurrence), percent-decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v, Plus::Space))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_bearer() {
        assert_eq!(
            query_param(Some("a=1&token=x%2Ey&b"), "token").as_deref(),
            Some("x.y")
        );
        assert_eq!(
            query_param(Some("token=%zz"), "token").as_deref(),
            Some("%zz")
        );
        assert_eq!(
            query_param(Some("token=ab%2"), "token").as_deref(),
            Some("ab%2")
        );
        assert_eq!(query_param(None, "token"), None);
        let mut h = http::HeaderMap::new();
        h.insert("authorization", "bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
