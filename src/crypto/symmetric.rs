//! AES-128 modes of the Widevine-style protocol (drm-interop.md §1.4-1.5): CBC with PKCS#7
//! (content-key and client-id wrapping) and CMAC (the SP 800-108 key derivation). RustCrypto
//! `aes` uses AES-NI when the CPU has it and a constant-time bitsliced fallback otherwise.

use super::Error;
use aes::Aes128;
use cbc::cipher::{
    BlockDecryptMut, BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit, block_padding::Pkcs7,
};
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

/// AES-CBC encryption with PKCS#7 padding under a 16-, 24- or 32-byte key (the
/// Widevine-style key API's AES request signer lets the key length pick the variant).
pub fn aes_cbc_encrypt(key: &[u8], iv: &[u8; 16], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(match key.len() {
        16 => cbc::Encryptor::<Aes128>::new_from_slices(key, iv)
            .map_err(|_| Error::Open)?
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
        24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(|_| Error::Open)?
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
        32 => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(|_| Error::Open)?
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
        _ => return Err(Error::Open),
    })
}

/// AES-256-CBC decryption and PKCS#7 unpadding (CPIX content keys). The plaintext is
/// zeroized on drop.
pub fn aes256_cbc_decrypt(
    key: &[u8; 32],
    iv: &[u8; 16],
    ciphertext: &[u8],
    padded: bool,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    use cbc::cipher::block_padding::NoPadding;
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let dec = cbc::Decryptor::<aes::Aes256>::new(key.into(), iv.into());
    let n = if padded {
        dec.decrypt_padded_mut::<Pkcs7>(&mut buf)
    } else {
        dec.decrypt_padded_mut::<NoPadding>(&mut buf)
    }
    .map_err(|_| Error::Open)?
    .len();
    buf.truncate(n);
    Ok(buf)
}

/// AES-128-CBC over block-aligned data, no padding (FairPlay-style containers).
pub fn aes128_cbc_encrypt_nopad(
    key: &[u8; 16],
    iv: &[u8; 16],
    data: &[u8],
) -> Result<Vec<u8>, Error> {
    use cbc::cipher::block_padding::NoPadding;
    if !data.len().is_multiple_of(16) {
        return Err(Error::Open);
    }
    Ok(cbc::Encryptor::<Aes128>::new(key.into(), iv.into())
        .encrypt_padded_vec_mut::<NoPadding>(data))
}

/// AES-128-CBC decryption of block-aligned data, no padding. Zeroized on drop.
pub fn aes128_cbc_decrypt_nopad(
    key: &[u8; 16],
    iv: &[u8; 16],
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    use cbc::cipher::block_padding::NoPadding;
    if !data.len().is_multiple_of(16) {
        return Err(Error::Open);
    }
    let mut buf = Zeroizing::new(data.to_vec());
    cbc::Decryptor::<Aes128>::new(key.into(), iv.into())
        .decrypt_padded_mut::<NoPadding>(&mut buf)
        .map_err(|_| Error::Open)?;
    Ok(buf)
}

/// One block of AES-128-ECB decryption.
pub fn aes128_ecb_decrypt_block(key: &[u8; 16], block: &[u8; 16]) -> [u8; 16] {
    use cbc::cipher::BlockDecrypt;
    let mut b = aes::Block::from(*block);
    Aes128::new(key.into()).decrypt_block(&mut b);
    b.into()
}

/// One block of AES-128-ECB encryption (the PlayReady-style AESCTR key checksum, FairPlay-style
/// key derivations).
pub fn aes128_ecb_block(key: &[u8; 16], block: &[u8; 16]) -> [u8; 16] {
    let mut b = aes::Block::from(*block);
    Aes128::new(key.into()).encrypt_block(&mut b);
    b.into()
}

/// AES-128-CMAC (NIST SP 800-38B) over the concatenation of `parts`.
pub fn aes128_cmac(key: &[u8; 16], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <Cmac<Aes128> as cmac::digest::KeyInit>::new(key.into());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// AES-128-CMAC (NIST SP 800-38B) of `N` messages under one key, computed in lock-step.
///
/// CMAC is a serial chain of AES calls, so one message uses a fraction of an AES-NI unit's
/// throughput; the Widevine-style key derivation needs five CMACs of the same ~2 KiB request
/// under the same key, and advancing the five chains together lets `encrypt_blocks` pipeline
/// them (several times faster than five serial chains: `docs/architecture.md`). Equal to
/// [`aes128_cmac`] on every input (property-tested).
pub fn aes128_cmac_many<const N: usize>(key: &[u8; 16], msgs: [&[u8]; N]) -> [[u8; 16]; N] {
    type Block = aes::Block;
    let cipher = Aes128::new(key.into());
    // Subkeys (SP 800-38B §6.1): L = E(K, 0); K1 = dbl(L); K2 = dbl(K1).
    let dbl = |b: [u8; 16]| {
        let v = u128::from_be_bytes(b);
        let r = (v << 1) ^ if v >> 127 == 1 { 0x87 } else { 0 };
        r.to_be_bytes()
    };
    let mut l = Block::default();
    cipher.encrypt_block(&mut l);
    let k1 = dbl(l.into());
    let k2 = dbl(k1);
    l.fill(0);

    let blocks: [usize; N] = msgs.map(|m| m.len().div_ceil(16).max(1));
    let rounds = blocks.iter().copied().max().unwrap_or(0);
    let mut state = [Block::default(); N];
    let mut batch = [Block::default(); N];
    let mut active = [0usize; N];
    for j in 0..rounds {
        let mut n = 0;
        for c in 0..N {
            if j >= blocks[c] {
                continue;
            }
            let m = msgs[c];
            let start = j * 16;
            let mut block = [0u8; 16];
            if j + 1 < blocks[c] {
                block.copy_from_slice(&m[start..start + 16]);
            } else {
                // The last block (§6.2): complete -> XOR K1; else pad 10* and XOR K2.
                let tail = &m[start..];
                block[..tail.len()].copy_from_slice(tail);
                let sub = if tail.len() == 16 {
                    k1
                } else {
                    block[tail.len()] = 0x80;
                    k2
                };
                block.iter_mut().zip(sub).for_each(|(b, s)| *b ^= s);
            }
            let mut x = state[c];
            x.iter_mut().zip(block).for_each(|(b, s)| *b ^= s);
            batch[n] = x;
            active[n] = c;
            n += 1;
        }
        cipher.encrypt_blocks(&mut batch[..n]);
        for i in 0..n {
            state[active[i]] = batch[i];
        }
    }
    state.map(Into::into)
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

    proptest::proptest! {
        #[test]
        fn cmac_many_equals_cmac(key in proptest::prelude::any::<[u8; 16]>(),
                                 a in proptest::collection::vec(0u8..=255, 0..80),
                                 b in proptest::collection::vec(0u8..=255, 0..80),
                                 c in proptest::collection::vec(0u8..=255, 0..80)) {
            let many = aes128_cmac_many(&key, [&a[..], &b[..], &c[..]]);
            proptest::prop_assert_eq!(many[0], aes128_cmac(&key, &[&a]));
            proptest::prop_assert_eq!(many[1], aes128_cmac(&key, &[&b]));
            proptest::prop_assert_eq!(many[2], aes128_cmac(&key, &[&c]));
        }
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
