//! Text encodings used on the wire (base64 flavours, hex, percent-encoding), with the
//! strictness each protocol demands.
//!
//! W3C Encrypted Media Extensions §9.1.3 (ClearKey) and RFC 7515 §2 (JWS) both use base64url
//! *without* padding. We are strict on input (no padding, no standard-alphabet characters, no
//! non-zero trailing bits) so that one key id has exactly one accepted spelling, and exact on
//! output. The key API accepts standard base64 with padding, as packagers send it.
//!
//! Percent-encoding (RFC 3986 §2.1) goes through the `percent-encoding` crate, with the
//! meaning of `+` chosen by each caller ([`Plus`]): a space in form-style query values, a
//! `+` where clients send base64 without escaping it.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// base64url, no padding; decoding rejects padding and non-canonical trailing bits.
pub const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Lower- or upper-case hex of an even number of digits.
pub fn hex_decode(input: &str) -> Option<Vec<u8>> {
    let b = input.as_bytes();
    if !b.len().is_multiple_of(2) || !b.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    b.chunks_exact(2)
        .map(|p| {
            let s = std::str::from_utf8(p).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// Lower-case hex.
pub fn hex_encode(input: &[u8]) -> String {
    input.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 with padding (RFC 4648 §4); decoding requires canonical padding.
pub const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(false),
);

/// Decodes strict base64url (no padding).
pub fn b64url_decode(input: &str) -> Result<Vec<u8>, base64::DecodeError> {
    B64URL.decode(input)
}

/// Encodes base64url without padding.
pub fn b64url_encode(input: &[u8]) -> String {
    B64URL.encode(input)
}

/// Decodes standard, padded base64.
pub fn b64_decode(input: &str) -> Result<Vec<u8>, base64::DecodeError> {
    B64.decode(input)
}

/// Encodes standard, padded base64.
pub fn b64_encode(input: &[u8]) -> String {
    B64.encode(input)
}

/// What a `+` means in a percent-encoded value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plus {
    /// A space: `application/x-www-form-urlencoded` (query strings such as `?token=`).
    Space,
    /// A `+`: values such as base64 that clients send without escaping it.
    Literal,
}

/// Decodes `%XX` escapes (two hex digits; a `%` followed by anything else stays as it is)
/// and `+` as `plus` says; bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(input: &str, plus: Plus) -> String {
    // `+` is replaced before decoding, so an escaped `%2B` still decodes to `+`.
    let input = match plus {
        Plus::Space => std::borrow::Cow::Owned(input.replace('+', " ")),
        Plus::Literal => std::borrow::Cow::Borrowed(input),
    };
    percent_encoding::percent_decode_str(&input)
        .decode_utf8_lossy()
        .into_owned()
}

/// Everything but RFC 3986 §2.3's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes every byte but the unreserved characters (upper-case hex), so the value
/// is safe anywhere in a URL, a query value included.
pub fn percent_encode(input: &str) -> String {
    percent_encoding::utf8_percent_encode(input, NOT_UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn b64url_rejects_padding_and_standard_alphabet() {
        assert_eq!(b64url_decode("AAECAw").unwrap(), vec![0, 1, 2, 3]);
        assert!(
            b64url_decode("AAECAw==").is_err(),
            "padding must be refused"
        );
        assert!(
            b64url_decode("+/8").is_err(),
            "standard alphabet must be refused"
        );
        assert_eq!(b64url_decode("-_8").unwrap(), vec![0xfb, 0xff]);
        // "AAECAx" decodes to the same bytes with a non-zero trailing bit: not canonical.
        assert!(b64url_decode("AAECAx").is_err());
    }

    #[test]
    fn b64_requires_canonical_padding() {
        assert_eq!(b64_decode("AAECAw==").unwrap(), vec![0, 1, 2, 3]);
        assert!(b64_decode("AAECAw").is_err());
    }

    #[test]
    fn percent_decode_plus_modes() {
        assert_eq!(percent_decode("a+b%2Bc", Plus::Space), "a b+c");
        assert_eq!(percent_decode("a+b%2Bc", Plus::Literal), "a+b+c");
        assert_eq!(percent_decode("%41%4a%4A", Plus::Literal), "AJJ");
    }

    #[test]
    fn percent_decode_leaves_anything_but_two_hex_digits_literal() {
        // `%+F` is not an escape: a sign is not a hex digit (`u8::from_str_radix` would take
        // it as one).
        assert_eq!(percent_decode("%+F", Plus::Literal), "%+F");
        assert_eq!(percent_decode("%+F", Plus::Space), "% F");
        assert_eq!(percent_decode("%-F%zz%4", Plus::Literal), "%-F%zz%4");
        assert_eq!(percent_decode("%", Plus::Literal), "%");
        assert_eq!(percent_decode("%é1", Plus::Literal), "%é1");
        assert_eq!(percent_decode("%C3%A9%FF", Plus::Literal), "é\u{FFFD}");
    }

    #[test]
    fn percent_encode_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("aZ09-._~"), "aZ09-._~");
        assert_eq!(
            percent_encode("a b+c/d?e&f=é"),
            "a%20b%2Bc%2Fd%3Fe%26f%3D%C3%A9"
        );
        for s in ["x y+z", "100%", "é/ü", ""] {
            assert_eq!(percent_decode(&percent_encode(s), Plus::Space), s);
            assert_eq!(percent_decode(&percent_encode(s), Plus::Literal), s);
        }
    }

    proptest! {
        #[test]
        fn b64url_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let text = b64url_encode(&bytes);
            prop_assert!(!text.contains('='));
            prop_assert_eq!(b64url_decode(&text).unwrap(), bytes);
        }

        #[test]
        fn b64url_has_one_spelling(text in "[A-Za-z0-9_-]{0,40}") {
            // Whatever decodes must re-encode to the very same text.
            if let Ok(bytes) = b64url_decode(&text) {
                prop_assert_eq!(b64url_encode(&bytes), text);
            }
        }
    }
}
