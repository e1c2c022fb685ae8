//! `SecretLookup`: the object store asks it for the secret of an access key id (and STS token)
//! to check a request's signature, and whether that caller may do an operation's RAM action on
//! its resource (STS credentials: what their role's policy allows). The binary supplies it; the
//! store keeps no secrets and no policies.

/// A secret to verify signatures with. Never logged (its `Debug` hides the value).
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Resolves access keys to secrets.
pub trait SecretLookup: Send + Sync + 'static {
    /// The secret of `access_key_id`, if the key exists and `security_token` is the token it
    /// requires (`None` for a long-term key; STS credentials need theirs).
    fn secret(&self, access_key_id: &str, security_token: Option<&str>) -> Option<Secret>;

    /// The secret of `access_key_id` whatever token it needs: for SigV4, where s3s checks the
    /// signature before the token is looked at (the token is then checked with `secret`).
    fn secret_of(&self, access_key_id: &str) -> Option<Secret>;

    /// Whether the caller, whose signature has been verified, may do `action`
    /// (`oss:PutObject`) on `resource` (`acs:oss:{region}:{account}:{bucket}/{key}`). `Err`
    /// holds why not, for the AccessDenied message. Account keys may do anything; the
    /// default allows everything (fixed key lists have no roles).
    fn authorize(
        &self,
        access_key_id: &str,
        security_token: Option<&str>,
        action: &str,
        resource: &str,
    ) -> Result<(), String> {
        let _ = (access_key_id, security_token, action, resource);
        Ok(())
    }
}

/// A fixed list of long-term keys.
pub struct StaticSecrets(pub Vec<(String, String)>);

impl SecretLookup for StaticSecrets {
    fn secret_of(&self, access_key_id: &str) -> Option<Secret> {
        self.secret(access_key_id, None)
    }

    fn secret(&self, access_key_id: &str, security_token: Option<&str>) -> Option<Secret> {
        if security_token.is_some_and(|t| !t.is_empty()) {
            return None;
        }
        self.0
            .iter()
            .find(|(id, _)| id == access_key_id)
            .map(|(_, s)| Secret(s.clone()))
    }
}
