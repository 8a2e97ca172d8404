//! Signed unsubscribe tokens.
//!
//! A token is `ADDRESS.SIGNATURE`, both base64url without padding: the
//! address (lowercased) and HMAC-SHA256 over `LIST_ID "\n" ADDRESS` under the
//! list's secret. Any endpoint holding the secret can verify a token without a
//! database, and nobody without it can make one for another address.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Makes tokens for one list under one secret.
#[derive(Clone)]
pub struct Signer {
    list_id: String,
    key: HmacSha256,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({}, secret hidden)", self.list_id)
    }
}

impl Signer {
    pub fn new(list_id: &str, secret: &[u8]) -> Signer {
        Signer {
            list_id: list_id.to_string(),
            key: <HmacSha256 as KeyInit>::new_from_slice(secret)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        }
    }

    fn mac(&self, address: &str) -> HmacSha256 {
        let mut mac = self.key.clone();
        mac.update(self.list_id.as_bytes());
        mac.update(b"\n");
        mac.update(address.as_bytes());
        mac
    }

    /// The token for an address (case does not matter).
    pub fn token(&self, address: &str) -> String {
        let address = address.to_lowercase();
        let signature = self.mac(&address).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(address.as_bytes()),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// The address a token was made for, if its signature is valid.
    pub fn verify(&self, token: &str) -> Option<String> {
        let (address, signature) = token.split_once('.')?;
        let address = String::from_utf8(URL_SAFE_NO_PAD.decode(address).ok()?).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        self.mac(&address).verify_slice(&signature).ok()?;
        Some(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_forgery() {
        let signer = Signer::new("supporters.example.org", b"secret");
        let token = signer.token("Zoe@Example.org");
        assert_eq!(signer.verify(&token).as_deref(), Some("zoe@example.org"));
        let other = Signer::new("supporters.example.org", b"other").token("mallory@example.org");
        let forged = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode("mallory@example.org"),
            token.split_once('.').unwrap().1
        );
        assert_eq!(signer.verify(&forged), None);
        assert_eq!(signer.verify(&other), None);
        assert_eq!(signer.verify("garbage"), None);
    }
}
