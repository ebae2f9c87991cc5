//! AES-128 modes of the Widevine-style protocol (drm-interop.md §1.4-1.5): CBC with PKCS#7
//! (content-key and client-id wrapping) and CMAC (the SP 800-108 key derivation). RustCrypto
//! `aes` uses AES-NI when the CPU has it and a constant-time bitsliced fallback otherwise.

use super::Error;
use aes::Aes128;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use cmac::{Cmac, Mac};
use zeroize::Zeroizing;

/// AES-128-CBC encryption with PKCS#7 padding.
pub fn aes128_cbc_encrypt(key: &[u8; 16], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<Aes128>::new(key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plaintext)
}

/// AES-128-CBC decryption and PKCS#7 unpadding. The plaintext is zeroized on drop.
pub fn aes128_cbc_decrypt(
    key: &[u8; 16],
    iv: &[u8; 16],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let n = cbc::Decryptor::<Aes128>::new(key.into(), iv.into())
        .decrypt_padded_mut::<Pkcs7>(&mut buf)
        .map_err(|_| Error::Open)?
        .len();
    buf.truncate(n);
    Ok(buf)
}

/// AES-128-CMAC (NIST SP 800-38B) over the concatenation of `parts`.
pub fn aes128_cmac(key: &[u8; 16], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <Cmac<Aes128> as cmac::digest::KeyInit>::new(key.into());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn cmac_matches_sp800_38b_examples() {
        // NIST SP 800-38B, Appendix D.1 (AES-128): examples 1 (empty) and 2 (16 bytes).
        let key: [u8; 16] = hex("2b7e151628aed2a6abf7158809cf4f3c").try_into().unwrap();
        assert_eq!(
            aes128_cmac(&key, &[]).to_vec(),
            hex("bb1d6929e95937287fa37d129b756746")
        );
        let m = hex("6bc1bee22e409f96e93d7e117393172a");
        assert_eq!(
            aes128_cmac(&key, &[&m[..8], &m[8..]]).to_vec(),
            hex("070a16b46b4d4144f79bdd9dd04a287c")
        );
    }

    #[test]
    fn cbc_round_trips_and_pads() {
        let ct = aes128_cbc_encrypt(&[1; 16], &[2; 16], &[3; 16]);
        assert_eq!(ct.len(), 32);
        assert_eq!(
            &aes128_cbc_decrypt(&[1; 16], &[2; 16], &ct).unwrap()[..],
            &[3; 16]
        );
        assert!(aes128_cbc_decrypt(&[1; 16], &[2; 16], &ct[..31]).is_err());
        // NIST SP 800-38A F.2.1 CBC-AES128 first block.
        let key: [u8; 16] = hex("2b7e151628aed2a6abf7158809cf4f3c").try_into().unwrap();
        let iv: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let ct = aes128_cbc_encrypt(&key, &iv, &hex("6bc1bee22e409f96e93d7e117393172a"));
        assert_eq!(ct[..16].to_vec(), hex("7649abac8119b246cee98e9b12e9197d"));
    }
}
