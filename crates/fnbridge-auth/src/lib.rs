//! Identity: the account's access keys, roles with their RAM policies, STS credentials for
//! functions, and the request signatures clients use. `Auth` is the one service that writes
//! identity records (rules checked inside the store write) and decides who a request is.
//!
//! # Layout
//! - `acs3`: ACS3-HMAC-SHA256, the FC 3.0 SDK's signature (canonical request, signing).
//! - `rpc`: the RPC-style HMAC-SHA1 query signature of older Alibaba clients.
//! - `acs_eb`: the EventBridge SDK's `acs:` HMAC-SHA1 signature (PutEvents).
//! - `policy`: RAM policy documents: parsing, limits, evaluation (explicit Deny wins).
//! - `sts`: temporary credentials for a role, verified without storage.
//! - `nonce`: the bounded replay cache of signature nonces.
//! - `secrets`: the master key (a 0600 file beside the database, never in it) and every secret
//!   derived from it.

pub mod acs3;
pub mod acs_eb;
mod nonce;
pub mod policy;
pub mod rpc;
mod secrets;
mod sts;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use fnbridge_store::identity::{AccessKey, Role};
use fnbridge_store::{Store, StoreError, now_ms};

pub use nonce::{NonceCache, Seen};
pub use policy::Policy;
pub use secrets::{MasterKey, same};
pub use sts::StsCredentials;

use secrets::{Purpose, random_alnum};

/// Access keys the account may hold.
pub const MAX_ACCESS_KEYS: usize = 100;
/// Roles the account may hold.
pub const MAX_ROLES: usize = 1000;
/// Longest description of a key or role.
pub const MAX_DESCRIPTION: usize = 1024;
/// Longest nonce accepted.
const MAX_NONCE: usize = 128;
/// Role credentials cached for functions (one per role in use, so `MAX_ROLES` plus the names
/// of roles that do not exist, which are remembered briefly).
const MAX_CACHED_CREDENTIALS: usize = 4096;
/// How long a function role that names no existing role is remembered as such.
const MISSING_ROLE_TTL: Duration = Duration::from_secs(5);

/// Settings the binary passes in.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub region: String,
    pub account_id: String,
    /// How far `x-acs-date` may be from the server's clock (FC: 15 minutes).
    pub max_skew: Duration,
    /// Lifetime of the STS credentials functions get (FC: 36 hours).
    pub sts_validity: Duration,
    /// Live signature nonces remembered at most; beyond it signed requests are refused.
    pub nonce_capacity: usize,
}

impl AuthConfig {
    pub fn new(region: &str, account_id: &str) -> AuthConfig {
        AuthConfig {
            region: region.to_owned(),
            account_id: account_id.to_owned(),
            max_skew: Duration::from_secs(15 * 60),
            sts_validity: Duration::from_secs(36 * 3600),
            nonce_capacity: 500_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("required HTTP header {0} was not specified")]
    MissingHeader(&'static str),
    #[error("{0}")]
    BadAuthorization(String),
    #[error("the bearer token is not valid")]
    BadToken,
    #[error("the access key id '{0}' does not exist")]
    UnknownKey(String),
    #[error("the security token is not valid: {0}")]
    BadSecurityToken(&'static str),
    #[error("the security token has expired")]
    ExpiredSecurityToken,
    #[error(
        "the request signature does not match; the server's string to sign is '{0}' (check the access key secret)"
    )]
    SignatureMismatch(String),
    #[error("x-acs-date '{date}' is more than {max_s} s away from the server's time")]
    Skewed { date: String, max_s: u64 },
    #[error("the signature nonce '{0}' has been used")]
    NonceUsed(String),
    #[error("too many signed requests within the clock-skew window; retry later")]
    NonceCacheFull,
    #[error("{principal} is not authorized to perform {action} on {resource}")]
    Denied {
        principal: String,
        action: String,
        resource: String,
    },
    #[error("{kind} '{name}' does not exist")]
    NotFound { kind: &'static str, name: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    LimitExceeded(String),
}

/// Who a request is.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The admin token.
    Admin,
    /// One of the account's access keys: full access, like the account itself.
    Account { access_key_id: String },
    /// STS credentials of a role: what its policy allows.
    Role {
        role: String,
        access_key_id: String,
        policy: Arc<Policy>,
    },
}

impl Principal {
    pub fn authorize(&self, action: &str, resource: &str) -> Result<(), AuthError> {
        match self {
            Principal::Admin | Principal::Account { .. } => Ok(()),
            Principal::Role { policy, .. } if policy.allows(action, resource) => Ok(()),
            Principal::Role { role, .. } => Err(AuthError::Denied {
                principal: format!("role '{role}'"),
                action: action.to_owned(),
                resource: resource.to_owned(),
            }),
        }
    }
}

/// A signed request as the API received it.
pub struct SignedRequest<'a> {
    /// The `Authorization` value after `ACS3-HMAC-SHA256 `.
    pub authorization: &'a str,
    pub method: &'a str,
    /// The path exactly as sent (percent-encoded).
    pub path: &'a str,
    pub query: &'a str,
    /// (lower-case name, value) of every header received.
    pub headers: &'a [(String, String)],
    /// Hex SHA-256 of the body received.
    pub body_sha256: &'a str,
}

impl SignedRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
    }
}

struct CachedCredentials {
    creds: Option<StsCredentials>,
    refresh_at: SystemTime,
}

struct Inner {
    cfg: AuthConfig,
    store: Store,
    key: MasterKey,
    admin_token: String,
    nonces: Mutex<NonceCache>,
    credentials: Mutex<HashMap<String, CachedCredentials>>,
}

/// The identity service. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

impl Auth {
    pub fn new(cfg: AuthConfig, store: Store, key: MasterKey, admin_token: String) -> Auth {
        let nonces = NonceCache::new(cfg.max_skew * 2, cfg.nonce_capacity);
        Auth {
            inner: Arc::new(Inner {
                cfg,
                store,
                key,
                admin_token,
                nonces: Mutex::new(nonces),
                credentials: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &AuthConfig {
        &self.inner.cfg
    }

    // ---- who is asking ----

    /// `Authorization: Bearer <token>` with the admin token.
    pub fn verify_bearer(&self, token: &str) -> Result<Principal, AuthError> {
        if same(token.trim().as_bytes(), self.inner.admin_token.as_bytes()) {
            Ok(Principal::Admin)
        } else {
            Err(AuthError::BadToken)
        }
    }

    /// An ACS3-HMAC-SHA256 signed request: the date within the skew, the key known (or the STS
    /// token valid), the signature right, and the nonce new, checked in that order so only a
    /// correctly signed request is remembered in the nonce cache.
    pub async fn verify_signed(&self, req: &SignedRequest<'_>) -> Result<Principal, AuthError> {
        let auth =
            acs3::parse_authorization(req.authorization).map_err(AuthError::BadAuthorization)?;
        let date = req
            .header("x-acs-date")
            .ok_or(AuthError::MissingHeader("x-acs-date"))?;
        let nonce = req
            .header("x-acs-signature-nonce")
            .ok_or(AuthError::MissingHeader("x-acs-signature-nonce"))?;
        if nonce.is_empty() || nonce.len() > MAX_NONCE {
            return Err(AuthError::BadAuthorization(format!(
                "x-acs-signature-nonce: 1 to {MAX_NONCE} characters"
            )));
        }
        let token = req.header("x-acs-security-token");
        // What protects the request must itself be signed.
        for (name, present) in [
            ("x-acs-date", true),
            ("x-acs-signature-nonce", true),
            ("x-acs-security-token", token.is_some()),
            (
                "x-acs-content-sha256",
                req.header("x-acs-content-sha256").is_some(),
            ),
        ] {
            if present && !auth.signed_headers.iter().any(|h| h == name) {
                return Err(AuthError::BadAuthorization(format!(
                    "SignedHeaders must include {name}"
                )));
            }
        }
        if let Some(h) = req.header("x-acs-content-sha256")
            && !h.eq_ignore_ascii_case(req.body_sha256)
        {
            return Err(AuthError::Invalid(
                "x-acs-content-sha256 does not match the SHA-256 of the body".into(),
            ));
        }
        self.check_date(date, SystemTime::now())?;

        let (principal, secret) = self
            .principal_of(&auth.access_key_id, token, "x-acs-security-token")
            .await?;

        let canonical = acs3::canonical_request(
            &acs3::Request {
                method: req.method,
                path: req.path,
                query: req.query,
                headers: req.headers,
                payload_sha256: req.body_sha256,
            },
            &auth.signed_headers,
        )
        .map_err(AuthError::BadAuthorization)?;
        let to_sign = acs3::string_to_sign(&canonical);
        let expected = acs3::sign(&secret, &to_sign);
        if !same(expected.as_bytes(), auth.signature.as_bytes()) {
            return Err(AuthError::SignatureMismatch(to_sign.replace('\n', "\\n")));
        }

        self.record_nonce(&auth.access_key_id, nonce)?;
        Ok(principal)
    }

    /// Who an EventBridge SDK request (`Authorization: acs:{ak}:{signature}`, see [`acs_eb`])
    /// is: a known access key or STS credentials (`x-acs-security-token`), an RFC 1123 `date`
    /// within the allowed skew, the signature over the request, and an
    /// `x-acs-signature-nonce` not seen before (recorded only once the signature checks).
    pub async fn verify_eventbridge(
        &self,
        authorization: &str,
        req: &acs_eb::Request<'_>,
    ) -> Result<Principal, AuthError> {
        let (ak, sig) =
            acs_eb::parse_authorization(authorization).map_err(AuthError::BadAuthorization)?;
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.trim().to_owned())
        };
        let date = header("date").ok_or(AuthError::MissingHeader("date"))?;
        let nonce = header("x-acs-signature-nonce")
            .ok_or(AuthError::MissingHeader("x-acs-signature-nonce"))?;
        if nonce.is_empty() || nonce.len() > MAX_NONCE {
            return Err(AuthError::BadAuthorization(format!(
                "x-acs-signature-nonce: 1 to {MAX_NONCE} characters"
            )));
        }
        let parsed =
            time::OffsetDateTime::parse(&date, &time::format_description::well_known::Rfc2822)
                .map_err(|_| {
                    AuthError::Invalid(format!("date: '{date}' is not an RFC 1123 date"))
                })?;
        let now = time::OffsetDateTime::from(SystemTime::now());
        let max = self.inner.cfg.max_skew;
        if (now - parsed).unsigned_abs() > max {
            return Err(AuthError::Skewed {
                date,
                max_s: max.as_secs(),
            });
        }
        let token = header("x-acs-security-token");
        let (principal, secret) = self
            .principal_of(ak, token.as_deref(), "x-acs-security-token")
            .await?;
        let to_sign = acs_eb::string_to_sign(req);
        let expected = acs_eb::sign(&secret, &to_sign);
        if !same(expected.as_bytes(), sig.as_bytes()) {
            return Err(AuthError::SignatureMismatch(to_sign.replace('\n', "\\n")));
        }
        self.record_nonce(ak, &nonce)?;
        Ok(principal)
    }

    /// Verifies an RPC-style request signed with HMAC-SHA1 (`Signature` among `params`, which
    /// hold the query and form parameters merged): the key (or STS credentials with their
    /// `SecurityToken`), `Timestamp` within the skew, the signature, and the nonce not replayed.
    pub async fn verify_rpc(
        &self,
        method: &str,
        params: &[(String, String)],
    ) -> Result<Principal, AuthError> {
        let get = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let missing = |n: &str| AuthError::Invalid(format!("missing parameter {n}"));
        let key_id = get("AccessKeyId").ok_or_else(|| missing("AccessKeyId"))?;
        let signature = get("Signature").ok_or_else(|| missing("Signature"))?;
        let nonce = get("SignatureNonce").ok_or_else(|| missing("SignatureNonce"))?;
        let timestamp = get("Timestamp").ok_or_else(|| missing("Timestamp"))?;
        if let Some(m) = get("SignatureMethod")
            && m != "HMAC-SHA1"
        {
            return Err(AuthError::Invalid(format!(
                "SignatureMethod '{m}' is not supported: use HMAC-SHA1"
            )));
        }
        if nonce.is_empty() || nonce.len() > MAX_NONCE {
            return Err(AuthError::Invalid(format!(
                "SignatureNonce must be 1 to {MAX_NONCE} characters"
            )));
        }
        self.check_date(timestamp, SystemTime::now())?;
        let (principal, secret) = self
            .principal_of(key_id, get("SecurityToken"), "SecurityToken")
            .await?;
        let to_sign = rpc::string_to_sign(method, params);
        let expected = rpc::sign(&secret, &to_sign);
        if !same(expected.as_bytes(), signature.as_bytes()) {
            return Err(AuthError::SignatureMismatch(to_sign));
        }
        self.record_nonce(key_id, nonce)?;
        Ok(principal)
    }

    /// The principal and signing secret of an access key id: an account key that exists, or
    /// STS credentials with their valid token whose role still exists.
    async fn principal_of(
        &self,
        key_id: &str,
        token: Option<&str>,
        token_name: &'static str,
    ) -> Result<(Principal, String), AuthError> {
        if key_id.starts_with("STS.") {
            let token = token.ok_or(AuthError::MissingHeader(token_name))?;
            let (role, secret) = sts::verify(
                &self.inner.key,
                &self.inner.cfg.account_id,
                key_id,
                token,
                SystemTime::now(),
            )
            .map_err(|e| match e {
                sts::TokenError::Expired => AuthError::ExpiredSecurityToken,
                sts::TokenError::Invalid => {
                    AuthError::BadSecurityToken("not issued by this server for this key")
                }
            })?;
            let r = role.clone();
            let stored = self.inner.store.read(move |c| c.get_role(&r)).await?;
            let stored = stored.ok_or(AuthError::BadSecurityToken("its role no longer exists"))?;
            let policy = Policy::parse(&stored.policy)
                .map_err(|e| StoreError::Corrupt(format!("role '{role}': {e}")))?;
            let p = Principal::Role {
                role: stored.name,
                access_key_id: key_id.to_owned(),
                policy: Arc::new(policy),
            };
            return Ok((p, secret));
        }
        let id = key_id.to_owned();
        let known = self
            .inner
            .store
            .read(move |c| c.get_access_key(&id))
            .await?;
        if known.is_none() {
            return Err(AuthError::UnknownKey(key_id.to_owned()));
        }
        let secret = self.inner.key.secret(Purpose::AccessKeySecret, key_id);
        let p = Principal::Account {
            access_key_id: key_id.to_owned(),
        };
        Ok((p, secret))
    }

    /// Remembers the nonce of a correctly signed request (per key id, as a keyed digest); a nonce
    /// seen within the window is a replay.
    fn record_nonce(&self, key_id: &str, nonce: &str) -> Result<(), AuthError> {
        let digest = self
            .inner
            .key
            .mac(Purpose::Nonce, format!("{key_id}\n{nonce}").as_bytes());
        let digest = u128::from_le_bytes(digest[..16].try_into().unwrap_or_default());
        let seen = self
            .inner
            .nonces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(digest, Instant::now());
        match seen {
            Seen::New => Ok(()),
            Seen::Replayed => Err(AuthError::NonceUsed(nonce.to_owned())),
            Seen::Full => Err(AuthError::NonceCacheFull),
        }
    }

    fn check_date(&self, date: &str, now: SystemTime) -> Result<(), AuthError> {
        let format =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
        let parsed = time::PrimitiveDateTime::parse(date, format)
            .map_err(|_| {
                AuthError::Invalid(format!(
                    "x-acs-date: '{date}' is not a UTC time like 2026-11-22T01:54:23Z"
                ))
            })?
            .assume_utc();
        let now = time::OffsetDateTime::from(now);
        let max = self.inner.cfg.max_skew;
        if (now - parsed).unsigned_abs() > max {
            return Err(AuthError::Skewed {
                date: date.to_owned(),
                max_s: max.as_secs(),
            });
        }
        Ok(())
    }

    // ---- access keys ----

    /// Creates an access key; returns it with its secret, which is shown this once (it can be
    /// derived again only with the master key).
    pub async fn create_key(&self, description: &str) -> Result<(AccessKey, String), AuthError> {
        description_ok(description)?;
        let key = AccessKey {
            access_key_id: format!("LTAI{}", random_alnum(20)),
            description: description.to_owned(),
            created_ms: now_ms(),
        };
        let k = key.clone();
        self.inner
            .store
            .write(move |c| {
                if c.count_access_keys()? >= MAX_ACCESS_KEYS {
                    return Ok(Err(AuthError::LimitExceeded(format!(
                        "the account has {MAX_ACCESS_KEYS} access keys, the most it may hold; delete one first"
                    ))));
                }
                c.insert_access_key(&k)?;
                Ok(Ok(()))
            })
            .await??;
        let secret = self
            .inner
            .key
            .secret(Purpose::AccessKeySecret, &key.access_key_id);
        tracing::info!(access_key_id = %key.access_key_id, "access key created");
        Ok((key, secret))
    }

    pub async fn list_keys(&self) -> Result<Vec<AccessKey>, AuthError> {
        Ok(self.inner.store.read(|c| c.list_access_keys()).await?)
    }

    pub async fn delete_key(&self, id: &str) -> Result<(), AuthError> {
        let i = id.to_owned();
        if !self
            .inner
            .store
            .write(move |c| c.delete_access_key(&i))
            .await?
        {
            return Err(AuthError::NotFound {
                kind: "access key",
                name: id.to_owned(),
            });
        }
        tracing::info!(access_key_id = %id, "access key deleted");
        Ok(())
    }

    // ---- roles ----

    pub async fn create_role(
        &self,
        name: &str,
        description: &str,
        policy: &str,
    ) -> Result<Role, AuthError> {
        role_name_ok(name)?;
        description_ok(description)?;
        Policy::parse(policy).map_err(AuthError::Invalid)?;
        let role = Role {
            name: name.to_owned(),
            description: description.to_owned(),
            policy: policy.trim().to_owned(),
            created_ms: now_ms(),
        };
        let r = role.clone();
        self.inner
            .store
            .write(move |c| {
                if c.count_roles()? >= MAX_ROLES {
                    return Ok(Err(AuthError::LimitExceeded(format!(
                        "the account has {MAX_ROLES} roles, the most it may hold; delete one first"
                    ))));
                }
                match c.insert_role(&r) {
                    Err(StoreError::Conflict(m)) => Ok(Err(AuthError::Conflict(m))),
                    other => other.map(Ok),
                }
            })
            .await??;
        // A function naming this role before it existed may now get credentials.
        self.forget_credentials();
        Ok(role)
    }

    pub async fn get_role(&self, name: &str) -> Result<Role, AuthError> {
        let n = name.to_owned();
        self.inner
            .store
            .read(move |c| c.get_role(&n))
            .await?
            .ok_or_else(|| AuthError::NotFound {
                kind: "role",
                name: name.to_owned(),
            })
    }

    pub async fn list_roles(&self) -> Result<Vec<Role>, AuthError> {
        Ok(self.inner.store.read(|c| c.list_roles()).await?)
    }

    /// Deletes a role; credentials issued for it stop working at once (they are checked
    /// against the stored role on every request).
    pub async fn delete_role(&self, name: &str) -> Result<(), AuthError> {
        let n = name.to_owned();
        if !self.inner.store.write(move |c| c.delete_role(&n)).await? {
            return Err(AuthError::NotFound {
                kind: "role",
                name: name.to_owned(),
            });
        }
        self.forget_credentials();
        Ok(())
    }

    fn forget_credentials(&self) {
        self.inner
            .credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    // ---- secrets for other signature schemes ----

    /// The secret a request signed with `access_key_id` must have been signed with, for the
    /// built-in services that check their own signature schemes (the object store's OSS, S3 and
    /// COS): an access key of the account (no token), or STS credentials with their valid token
    /// whose role still exists. `None` when unknown, expired or revoked. Blocking: one indexed
    /// read of a reader connection.
    pub fn secret_for(&self, access_key_id: &str, token: Option<&str>) -> Option<String> {
        if access_key_id.starts_with("STS.") {
            let (role, secret) = sts::verify(
                &self.inner.key,
                &self.inner.cfg.account_id,
                access_key_id,
                token?,
                SystemTime::now(),
            )
            .ok()?;
            self.inner
                .store
                .read_blocking(move |c| c.get_role(&role))
                .ok()??;
            return Some(secret);
        }
        if token.is_some_and(|t| !t.is_empty()) {
            return None;
        }
        let id = access_key_id.to_owned();
        self.inner
            .store
            .read_blocking(move |c| c.get_access_key(&id))
            .ok()??;
        Some(
            self.inner
                .key
                .secret(Purpose::AccessKeySecret, access_key_id),
        )
    }

    /// Whether the verified holder of `access_key_id` (and `token`) may do `action` on
    /// `resource`, for the built-in services that verify their own signatures (the object
    /// store): an account key may do anything; STS credentials what their role's policy
    /// allows, read from the store now, so a policy change applies to the next request.
    /// Blocking: one indexed read for STS credentials, none for account keys.
    pub fn authorize_key(
        &self,
        access_key_id: &str,
        token: Option<&str>,
        action: &str,
        resource: &str,
    ) -> Result<(), AuthError> {
        if !access_key_id.starts_with("STS.") {
            return Ok(());
        }
        let token = token.ok_or(AuthError::MissingHeader("security token"))?;
        let (role, _) = sts::verify(
            &self.inner.key,
            &self.inner.cfg.account_id,
            access_key_id,
            token,
            SystemTime::now(),
        )
        .map_err(|e| match e {
            sts::TokenError::Expired => AuthError::ExpiredSecurityToken,
            sts::TokenError::Invalid => {
                AuthError::BadSecurityToken("not issued by this server for this key")
            }
        })?;
        let r = role.clone();
        let stored = self
            .inner
            .store
            .read_blocking(move |c| c.get_role(&r))?
            .ok_or(AuthError::BadSecurityToken("its role no longer exists"))?;
        let policy = Policy::parse(&stored.policy)
            .map_err(|e| StoreError::Corrupt(format!("role '{role}': {e}")))?;
        Principal::Role {
            role: stored.name,
            access_key_id: access_key_id.to_owned(),
            policy: Arc::new(policy),
        }
        .authorize(action, resource)
    }

    /// The secret of `access_key_id` before its token is looked at (S3's SigV4 checks the
    /// signature first; the token is then checked with `secret_for`). For STS key ids the
    /// secret follows from the id alone; an account key must exist.
    pub fn secret_of(&self, access_key_id: &str) -> Option<String> {
        if access_key_id.starts_with("STS.") {
            return Some(self.inner.key.secret(Purpose::StsSecret, access_key_id));
        }
        self.secret_for(access_key_id, None)
    }

    // ---- credentials for functions ----

    /// The role name a function's `role` ARN (`acs:ram::{account}:role/{name}`) names, if it is
    /// of this account.
    pub fn role_of_arn<'a>(&self, arn: &'a str) -> Option<&'a str> {
        let rest = arn.strip_prefix("acs:ram::")?;
        let (account, name) = rest.split_once(":role/")?;
        (account == self.inner.cfg.account_id && role_name_ok(name).is_ok()).then_some(name)
    }

    /// STS credentials for a function whose `role` is `arn`: `None` when the ARN names no role
    /// of this account. Credentials are shared by every invocation of the role and replaced
    /// once a third of their validity has passed, so any credential handed out has at least
    /// two thirds of FC's validity left.
    pub async fn credentials_for(&self, arn: &str) -> Option<StsCredentials> {
        let now = SystemTime::now();
        {
            let cache = self
                .inner
                .credentials
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cache.get(arn)
                && now < c.refresh_at
            {
                return c.creds.clone();
            }
        }
        let role = match self.role_of_arn(arn) {
            Some(name) => {
                let n = name.to_owned();
                match self.inner.store.read(move |c| c.get_role(&n)).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(role = arn, error = %e, "cannot read the role; the function runs without credentials");
                        return None;
                    }
                }
            }
            None => None,
        };
        let validity = self.inner.cfg.sts_validity;
        let entry = match role {
            Some(r) => CachedCredentials {
                creds: Some(sts::issue(
                    &self.inner.key,
                    &self.inner.cfg.account_id,
                    &r.name,
                    now,
                    validity,
                )),
                refresh_at: now + validity / 3,
            },
            None => {
                tracing::warn!(
                    role = arn,
                    "the function's role names no role of this account; it runs without credentials"
                );
                CachedCredentials {
                    creds: None,
                    refresh_at: now + MISSING_ROLE_TTL,
                }
            }
        };
        let creds = entry.creds.clone();
        let mut cache = self
            .inner
            .credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED_CREDENTIALS {
            cache.clear();
        }
        cache.insert(arn.to_owned(), entry);
        creds
    }

    // ---- presigned URLs ----

    /// A signature over `what`, for URLs fnbridge hands out (code downloads).
    pub fn presign(&self, what: &str) -> String {
        hex::encode(self.inner.key.mac(Purpose::Presign, what.as_bytes()))
    }

    pub fn check_presigned(&self, what: &str, signature: &str) -> bool {
        same(self.presign(what).as_bytes(), signature.as_bytes())
    }
}

fn description_ok(d: &str) -> Result<(), AuthError> {
    if d.len() > MAX_DESCRIPTION {
        return Err(AuthError::Invalid(format!(
            "description: longer than {MAX_DESCRIPTION} bytes"
        )));
    }
    Ok(())
}

/// RAM's rule: 1 to 64 characters of letters, digits, `.` and `-`.
fn role_name_ok(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "role name '{name}': 1 to 64 letters, digits, '.' or '-'"
        )))
    }
}
