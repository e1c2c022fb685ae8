//! STS-style temporary credentials for a role: an `STS.` access key id, a secret and a security
//! token, valid until an expiry. Nothing is stored: the token carries the role and expiry and is
//! authenticated with the master key, and the secret is derived from the key id, so any number
//! of issued credentials costs no memory or storage, and deleting the role revokes them all.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::secrets::{MasterKey, Purpose, random_alnum, same};

/// Longest security token accepted (an issued one is about 150 bytes).
pub const MAX_TOKEN: usize = 1024;

/// Credentials handed to a function.
#[derive(Clone, PartialEq, Eq)]
pub struct StsCredentials {
    pub access_key_id: String,
    pub access_key_secret: String,
    pub security_token: String,
    pub expiration: SystemTime,
}

impl std::fmt::Debug for StsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret and token are credentials: never in a log line.
        f.debug_struct("StsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    ak: String,
    role: String,
    acct: String,
    exp: u64,
}

pub(crate) fn issue(
    key: &MasterKey,
    account: &str,
    role: &str,
    now: SystemTime,
    validity: Duration,
) -> StsCredentials {
    let access_key_id = format!("STS.{}", random_alnum(24));
    let expiration = now + validity;
    let claims = Claims {
        ak: access_key_id.clone(),
        role: role.to_owned(),
        acct: account.to_owned(),
        exp: expiration
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
    let mac = URL_SAFE_NO_PAD.encode(key.mac(Purpose::StsToken, body.as_bytes()));
    StsCredentials {
        access_key_secret: key.secret(Purpose::StsSecret, &access_key_id),
        access_key_id,
        security_token: format!("{body}.{mac}"),
        // Whole seconds, as the token says.
        expiration: UNIX_EPOCH + Duration::from_secs(claims.exp),
    }
}

/// Why a presented token is not accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TokenError {
    Invalid,
    Expired,
}

/// Checks a token presented with `access_key_id`; returns the role name and the secret the
/// request must have been signed with.
pub(crate) fn verify(
    key: &MasterKey,
    account: &str,
    access_key_id: &str,
    token: &str,
    now: SystemTime,
) -> Result<(String, String), TokenError> {
    if token.len() > MAX_TOKEN {
        return Err(TokenError::Invalid);
    }
    let (body, mac) = token.split_once('.').ok_or(TokenError::Invalid)?;
    let mac = URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|_| TokenError::Invalid)?;
    if !same(&mac, &key.mac(Purpose::StsToken, body.as_bytes())) {
        return Err(TokenError::Invalid);
    }
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(body)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Invalid)?;
    if claims.ak != access_key_id || claims.acct != account {
        return Err(TokenError::Invalid);
    }
    let now_s = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if now_s >= claims.exp {
        return Err(TokenError::Expired);
    }
    Ok((claims.role, key.secret(Purpose::StsSecret, access_key_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_credentials_verify_until_they_expire() {
        let k = MasterKey::random();
        let now = SystemTime::now();
        let c = issue(&k, "123", "reader", now, Duration::from_secs(3600));
        assert!(c.access_key_id.starts_with("STS."));
        assert!(!format!("{c:?}").contains(&c.access_key_secret));
        let (role, secret) = verify(&k, "123", &c.access_key_id, &c.security_token, now).unwrap();
        assert_eq!(
            (role.as_str(), secret),
            ("reader", c.access_key_secret.clone())
        );
        let later = now + Duration::from_secs(3601);
        assert_eq!(
            verify(&k, "123", &c.access_key_id, &c.security_token, later),
            Err(TokenError::Expired)
        );
        // Another key id, account, server key, or a changed token: invalid.
        let other = issue(&k, "123", "reader", now, Duration::from_secs(3600));
        for (ak, acct, key, token) in [
            (
                other.access_key_id.as_str(),
                "123",
                &k,
                c.security_token.as_str(),
            ),
            (
                c.access_key_id.as_str(),
                "999",
                &k,
                c.security_token.as_str(),
            ),
            (
                c.access_key_id.as_str(),
                "123",
                &MasterKey::random(),
                c.security_token.as_str(),
            ),
            (c.access_key_id.as_str(), "123", &k, "x.y"),
            (c.access_key_id.as_str(), "123", &k, ""),
        ] {
            assert_eq!(
                verify(key, acct, ak, token, now),
                Err(TokenError::Invalid),
                "{token}"
            );
        }
        let mut forged = c.security_token.clone();
        forged.insert(3, 'A');
        assert!(verify(&k, "123", &c.access_key_id, &forged, now).is_err());
    }
}
