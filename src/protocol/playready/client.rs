//! A PlayReady-style device simulator: builds challenges in the shape the reference client
//! emits (docs/playready.md §2.3) and opens the licences of a response. Used by the unit tests,
//! the load-test challenge generator and the fuzz seeds; the interop tests use the real
//! third-party client instead. Never used by the server.

use super::challenge::{NS_DS, NS_ENC, NS_M, NS_P, SOAP11};
use super::provision::Device;
use super::xmr;
use crate::crypto::ecc::{self, EccPrivateKey, Point};
use crate::crypto::sha256;
use crate::encoding::{b64_decode, b64_encode};

/// What can go wrong on the device side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// P-256 failed.
    #[error(transparent)]
    Ecc(#[from] ecc::Error),
    /// The response is a fault or is malformed.
    #[error("response: {0}")]
    Response(String),
    /// A licence did not open.
    #[error(transparent)]
    Xmr(#[from] xmr::Error),
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Device {
    /// A challenge for `wrmheader` (the header XML), encrypted to `server`, stamped with
    /// `client_time` (Unix seconds).
    pub fn challenge(
        &self,
        server: &Point,
        wrmheader: &str,
        custom_data: Option<&str>,
        client_time: u64,
    ) -> Result<String, Error> {
        // The session point: a random point, whose X is IV‖key.
        let session = EccPrivateKey::generate()?;
        let point = *session.public();
        let iv: [u8; 16] = point[..16].try_into().map_err(|_| ecc::Error::Internal)?;
        let key: [u8; 16] = point[16..32].try_into().map_err(|_| ecc::Error::Internal)?;
        let encrypted_key = ecc::elgamal_encrypt(server, &point)?;
        let data = format!(
            "<Data><CertificateChains><CertificateChain> {} </CertificateChain></CertificateChains><Features><Feature Name=\"AESCBC\"></Feature><REE><AESCBCS></AESCBCS></REE></Features></Data>",
            b64_encode(&self.chain)
        );
        let mut cipher = iv.to_vec();
        cipher.extend(crate::crypto::symmetric::aes128_cbc_encrypt(
            &key,
            &iv,
            data.as_bytes(),
        ));
        let nonce: [u8; 16] = crate::crypto::random_array().map_err(|_| ecc::Error::Internal)?;
        let version = if wrmheader.contains("version=\"4.3.0.0\"") {
            5
        } else if wrmheader.contains("version=\"4.2.0.0\"") {
            4
        } else {
            1
        };
        let custom = custom_data
            .map(|c| format!("<CustomData>{}</CustomData>", escape(c)))
            .unwrap_or_default();
        let la = format!(
            "<LA xmlns=\"{NS_P}\" Id=\"SignedData\" xml:space=\"preserve\"><Version>{version}</Version><ContentHeader>{wrmheader}</ContentHeader><CLIENTINFO><CLIENTVERSION>10.0.16384.10011</CLIENTVERSION></CLIENTINFO>{custom}<LicenseNonce>{}</LicenseNonce><ClientTime>{}</ClientTime><EncryptedData xmlns=\"{NS_ENC}\" Type=\"http://www.w3.org/2001/04/xmlenc#Element\"><EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#aes128-cbc\"></EncryptionMethod><KeyInfo xmlns=\"{NS_DS}\"><EncryptedKey xmlns=\"{NS_ENC}\"><EncryptionMethod Algorithm=\"http://schemas.microsoft.com/DRM/2007/03/protocols#ecc256\"></EncryptionMethod><KeyInfo xmlns=\"{NS_DS}\"><KeyName>WMRMServer</KeyName></KeyInfo><CipherData><CipherValue>{}</CipherValue></CipherData></EncryptedKey></KeyInfo><CipherData><CipherValue>{}</CipherValue></CipherData></EncryptedData></LA>",
            b64_encode(&nonce),
            client_time,
            b64_encode(&encrypted_key),
            b64_encode(&cipher),
        );
        let signed_info = format!(
            "<SignedInfo xmlns=\"{NS_DS}\"><CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"></CanonicalizationMethod><SignatureMethod Algorithm=\"http://schemas.microsoft.com/DRM/2007/03/protocols#ecdsa-sha256\"></SignatureMethod><Reference URI=\"#SignedData\"><DigestMethod Algorithm=\"http://schemas.microsoft.com/DRM/2007/03/protocols#sha256\"></DigestMethod><DigestValue>{}</DigestValue></Reference></SignedInfo>",
            b64_encode(&sha256(la.as_bytes()))
        );
        let signature = self.sign.signer()?.sign(signed_info.as_bytes())?;
        Ok(format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:soap=\"{SOAP11}\"><soap:Body><AcquireLicense xmlns=\"{NS_P}\"><challenge><Challenge xmlns=\"{NS_M}\">{la}<Signature xmlns=\"{NS_DS}\">{signed_info}<SignatureValue>{}</SignatureValue><KeyInfo xmlns=\"{NS_DS}\"><KeyValue><ECCKeyValue><PublicKey>{}</PublicKey></ECCKeyValue></KeyValue></KeyInfo></Signature></Challenge></challenge></AcquireLicense></soap:Body></soap:Envelope>",
            b64_encode(&signature),
            b64_encode(self.sign.public()),
        ))
    }

    /// Opens every licence of a response.
    pub fn open_response(&self, response: &[u8]) -> Result<Vec<xmr::Opened>, Error> {
        let root = crate::xml::parse(response).map_err(|e| Error::Response(e.to_string()))?;
        let mut out = Vec::new();
        let mut stack = vec![&root];
        let mut licences = Vec::new();
        while let Some(e) = stack.pop() {
            if e.local == "Fault" {
                return Err(Error::Response(e.elements().map(|c| c.text()).collect()));
            }
            if e.is(NS_P, "License") {
                licences.push(e.text());
            }
            stack.extend(e.elements());
        }
        for l in licences {
            let bytes = b64_decode(&l).map_err(|e| Error::Response(e.to_string()))?;
            out.push(xmr::open(&bytes, &self.encrypt)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::challenge;
    use super::super::provision;
    use super::*;

    /// A challenge from the simulator parses, verifies and opens with the server key; a
    /// wrong server key, a changed byte of LA or of the signature are each caught.
    #[test]
    fn simulator_challenge_round_trip() {
        let root = EccPrivateKey::generate().unwrap();
        let group = provision::new_group(&root, Default::default(), 3000).unwrap();
        let dev = provision::new_device(&group, 2000).unwrap();
        let server = EccPrivateKey::generate().unwrap();
        let header = super::super::header::wrmheader(
            &[super::super::header::HeaderKey {
                kid: crate::keyring::KeyId::from_bytes([0x11; 16]),
                key: None,
            }],
            super::super::header::AlgId::AesCbc,
            Some("https://x/playready/license"),
        );
        let soap = dev
            .challenge(
                server.public(),
                &header,
                Some("<Token>a.b.c</Token>"),
                1_800_000_000,
            )
            .unwrap();
        let c = challenge::parse(soap.as_bytes()).unwrap();
        c.verify().unwrap();
        assert_eq!(
            c.header.kids,
            vec![challenge::Kid {
                id: [0x11; 16],
                cbcs: true
            }]
        );
        assert_eq!(c.custom_data.as_deref(), Some("<Token>a.b.c</Token>"));
        assert_eq!(&c.public_key, dev.sign.public());
        let data = c.open(&server).unwrap();
        assert_eq!(data.chain, dev.chain);
        assert_eq!(data.features, vec!["AESCBC".to_owned()]);
        let other = EccPrivateKey::generate().unwrap();
        assert_eq!(c.open(&other).unwrap_err(), challenge::Error::ServerKey);

        let tamper = |from: &str, to: &str| {
            let bad = soap.replacen(from, to, 1);
            assert_ne!(bad, soap);
            challenge::parse(bad.as_bytes())
                .unwrap()
                .verify()
                .unwrap_err()
        };
        assert_eq!(
            tamper("<Version>5</Version>", "<Version>4</Version>"),
            challenge::Error::Digest
        );
        assert_eq!(
            tamper(
                "Reference URI=\"#SignedData\">",
                "Reference URI=\"#SignedData\" >"
            ),
            challenge::Error::Signature
        );
    }
}
