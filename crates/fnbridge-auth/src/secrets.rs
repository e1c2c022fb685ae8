//! The master key, and every secret fnbridge derives from it instead of storing: access key
//! secrets, STS secrets and tokens, and presigned URLs. The key lives in one file of the data
//! directory (mode 0600), never in the database, so a copy of `fnbridge.db` alone gives no
//! usable credential away.

use std::io::Write;
use std::path::Path;

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

/// What a derived MAC is for; each purpose gets its own key, so a value made for one can never
/// pass as another.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    AccessKeySecret,
    StsSecret,
    StsToken,
    Presign,
    Nonce,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::AccessKeySecret => b"fnbridge access key secret v1",
            Purpose::StsSecret => b"fnbridge sts secret v1",
            Purpose::StsToken => b"fnbridge sts token v1",
            Purpose::Presign => b"fnbridge presigned url v1",
            Purpose::Nonce => b"fnbridge nonce digest v1",
        }
    }
}

/// 32 random bytes; `Debug` shows nothing of them.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn random() -> MasterKey {
        MasterKey(rand::rng().random())
    }

    /// Reads the key from `path` (64 hex digits), creating it with mode 0600 on first use. A
    /// file that exists but does not hold a key is an error, not replaced: replacing it would
    /// silently invalidate every access key.
    pub fn load_or_create(path: &Path) -> std::io::Result<MasterKey> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim()).ok().filter(|b| b.len() == 32);
                let Some(bytes) = bytes else {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{} does not hold a 64-hex-digit key", path.display()),
                    ));
                };
                let mut k = [0u8; 32];
                k.copy_from_slice(&bytes);
                Ok(MasterKey(k))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = MasterKey::random();
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts.open(path)?;
                f.write_all(hex::encode(key.0).as_bytes())?;
                f.sync_all()?;
                Ok(key)
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn mac(&self, purpose: Purpose, msg: &[u8]) -> [u8; 32] {
        let mut sub = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        sub.update(purpose.label());
        let sub = sub.finalize().into_bytes();
        let mut mac = Hmac::<Sha256>::new_from_slice(&sub).expect("any key length");
        mac.update(msg);
        mac.finalize().into_bytes().into()
    }

    /// A 30-character secret (120 bits) derived for `id`.
    pub(crate) fn secret(&self, purpose: Purpose, id: &str) -> String {
        hex::encode(&self.mac(purpose, id.as_bytes())[..15])
    }
}

/// Constant-time equality, so a comparison does not reveal how many leading bytes matched.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `n` random characters of `[A-Za-z0-9]`, for ids.
pub(crate) fn random_alnum(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.key");
        let a = MasterKey::load_or_create(&path).unwrap();
        let b = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(a.0, b.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        assert!(MasterKey::load_or_create(&path).is_err());
        assert_eq!(format!("{a:?}"), "MasterKey(..)");
    }

    #[test]
    fn purposes_do_not_share_values() {
        let k = MasterKey::random();
        let s = k.secret(Purpose::AccessKeySecret, "LTAI1");
        assert_eq!(s.len(), 30);
        assert_eq!(s, k.secret(Purpose::AccessKeySecret, "LTAI1"));
        assert_ne!(s, k.secret(Purpose::StsSecret, "LTAI1"));
        assert_ne!(
            s,
            MasterKey::random().secret(Purpose::AccessKeySecret, "LTAI1")
        );
    }
}
