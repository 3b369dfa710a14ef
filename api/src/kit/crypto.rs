//! Keys and the primitives built on them: JWT keys, AES-256-GCM for personal data with
//! an HMAC blind index for lookups, SHA-256 for refresh tokens, argon2id for passwords.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::kit::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("WUYE_DATA_KEY must be base64 of exactly 32 bytes")]
    DataKey,
    #[error("argon2 parameters: {0}")]
    Argon2(argon2::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("ciphertext is damaged or was made with another key")]
    Decrypt,
    #[error("password hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
}

pub struct Keys {
    pub jwt_encoding: EncodingKey,
    pub jwt_decoding: DecodingKey,
    /// how access tokens are checked (HS256, `iss`, `aud` and `sub` required; expiry is
    /// checked against the server's clock by the caller), built once
    pub jwt_validation: jsonwebtoken::Validation,
    aes: Aes256Gcm,
    index_key: [u8; 32],
    code_key: [u8; 32],
    file_key: [u8; 32],
    argon2_params: Params,
    /// verified against when an account does not exist, so timing does not tell
    dummy_hash: String,
}

fn derive(master: &[u8], label: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master).unwrap_or_else(|_| unreachable!());
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

impl Keys {
    pub fn from_config(cfg: &Config) -> Result<Self, KeyError> {
        let master = STANDARD.decode(cfg.data_key.expose_secret().trim()).map_err(|_| KeyError::DataKey)?;
        if master.len() != 32 {
            return Err(KeyError::DataKey);
        }
        let aes_key = derive(&master, "wuye/pii-aes-256-gcm");
        let aes = Aes256Gcm::new_from_slice(&aes_key).map_err(|_| KeyError::DataKey)?;
        let a = &cfg.auth;
        let argon2_params = Params::new(a.argon2_memory_kib, a.argon2_iterations, a.argon2_parallelism, None)
            .map_err(KeyError::Argon2)?;
        let secret = cfg.jwt_secret.expose_secret().as_bytes();
        let mut jwt_validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        jwt_validation.validate_exp = false;
        jwt_validation.set_required_spec_claims(&["iss", "aud", "sub"]);
        jwt_validation.set_issuer(&[&a.jwt_issuer]);
        jwt_validation.set_audience(&[&a.jwt_audience]);
        let mut keys = Keys {
            jwt_encoding: EncodingKey::from_secret(secret),
            jwt_decoding: DecodingKey::from_secret(secret),
            jwt_validation,
            aes,
            index_key: derive(&master, "wuye/pii-blind-index"),
            code_key: derive(&master, "wuye/one-time-codes"),
            file_key: derive(&master, "wuye/private-file-urls"),
            argon2_params,
            dummy_hash: String::new(),
        };
        keys.dummy_hash = keys.hash_password("dummy-password-for-timing-1").map_err(|_| KeyError::DataKey)?;
        Ok(keys)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.argon2_params.clone())
    }

    pub fn hash_password(&self, password: &str) -> Result<String, CryptoError> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(CryptoError::Hash)
    }

    /// Constant work whether or not the account exists: without a hash, a dummy one is checked.
    pub fn verify_password(&self, password: &str, hash: Option<&str>) -> bool {
        let target = hash.unwrap_or(&self.dummy_hash);
        let ok = PasswordHash::new(target)
            .map(|parsed| self.argon2().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false);
        ok && hash.is_some()
    }

    pub fn argon2_description(&self) -> String {
        let p = &self.argon2_params;
        format!("argon2id m={} KiB t={} p={}", p.m_cost(), p.t_cost(), p.p_cost())
    }

    /// nonce (12 bytes) || AES-256-GCM ciphertext
    pub fn encrypt_pii(&self, plain: &str) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        // Encryption with a valid key and an in-memory buffer cannot fail.
        if let Ok(ct) = self.aes.encrypt(&nonce, plain.as_bytes()) {
            out.extend_from_slice(&ct);
        }
        out
    }

    pub fn decrypt_pii(&self, data: &[u8]) -> Result<String, CryptoError> {
        if data.len() < 12 {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ct) = data.split_at(12);
        let plain = self.aes.decrypt(Nonce::from_slice(nonce), ct).map_err(|_| CryptoError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Decrypt)
    }

    /// HMAC-SHA256 of a normalised value: equal inputs give equal indexes, the value stays hidden.
    pub fn blind_index(&self, value: &str) -> Vec<u8> {
        mac(&self.index_key, value.as_bytes())
    }

    /// The signature of a private file's URL: the key and the second it expires.
    pub fn file_signature(&self, key: &str, expires: i64) -> String {
        URL_SAFE_NO_PAD.encode(mac(&self.file_key, format!("{key}\n{expires}").as_bytes()))
    }

    /// Whether `sig` signs the key and expiry (compared in constant time).
    pub fn verify_file_signature(&self, key: &str, expires: i64, sig: &str) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(sig) else { return false };
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.file_key).unwrap_or_else(|_| unreachable!());
        m.update(format!("{key}\n{expires}").as_bytes());
        m.verify_slice(&given).is_ok()
    }

    /// Hash of a one-time code bound to what it was issued for.
    pub fn code_hash(&self, purpose: &str, phone: &str, code: &str) -> String {
        URL_SAFE_NO_PAD.encode(mac(&self.code_key, format!("{purpose}:{phone}:{code}").as_bytes()))
    }
}

fn mac(key: &[u8; 32], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// HMAC-SHA256 under a key of any length (what a terminal signs its requests with).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// Whether `sig` is the HMAC-SHA256 of `data` under `key` (compared in constant time).
pub fn verify_hmac_sha256(key: &[u8], data: &[u8], sig: &[u8]) -> bool {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(data);
    m.verify_slice(sig).is_ok()
}

/// A fresh opaque token: 32 random bytes, URL-safe base64.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

pub fn sha256(data: &str) -> Vec<u8> {
    Sha256::digest(data.as_bytes()).to_vec()
}

/// SHA-256 in lower-case hex (what Apollo's persisted-query ids are).
pub fn sha256_hex(data: &str) -> String {
    format!("{:x}", Sha256::digest(data.as_bytes()))
}

/// Equal-time comparison for secrets.
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        let mut cfg = Config::default();
        cfg.auth.argon2_memory_kib = 1024;
        cfg.auth.argon2_iterations = 1;
        Keys::from_config(&cfg).unwrap()
    }

    #[test]
    fn pii_round_trip_and_tamper() {
        let k = keys();
        let ct = k.encrypt_pii("11010519491231002X");
        assert_eq!(k.decrypt_pii(&ct).unwrap(), "11010519491231002X");
        let mut bad = ct.clone();
        bad[15] ^= 1;
        assert!(k.decrypt_pii(&bad).is_err());
        assert_ne!(k.encrypt_pii("x"), k.encrypt_pii("x"), "nonce must differ");
        assert_eq!(k.blind_index("a"), k.blind_index("a"));
        assert_ne!(k.blind_index("a"), k.blind_index("b"));
    }

    #[test]
    fn passwords() {
        let k = keys();
        let h = k.hash_password("Wuye@2026").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(k.verify_password("Wuye@2026", Some(&h)));
        assert!(!k.verify_password("wrong", Some(&h)));
        assert!(!k.verify_password("dummy-password-for-timing-1", None));
    }
}
