//! The identity service against a real store: keys and roles with their limits, and signed
//! requests verified end to end (key, signature, date, nonce, STS token, policy).

use std::time::{Duration, SystemTime};

use fnbridge_auth::{Auth, AuthConfig, AuthError, MasterKey, Principal, SignedRequest, acs3};
use fnbridge_store::Store;

fn auth() -> (tempfile::TempDir, Auth) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
    let a = Auth::new(
        AuthConfig::new("cn-hangzhou", "123"),
        store,
        MasterKey::random(),
        "admintoken-0123456789".into(),
    );
    (dir, a)
}

fn date(offset_s: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_s);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap()
}

/// Signs a GET as the SDK does and verifies it.
async fn call(
    a: &Auth,
    ak: &str,
    secret: &str,
    token: Option<&str>,
    date: &str,
    nonce: &str,
) -> Result<Principal, AuthError> {
    let body = acs3::sha256_hex(b"");
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), "127.0.0.1:9000".into()),
        ("x-acs-date".into(), date.into()),
        ("x-acs-signature-nonce".into(), nonce.into()),
        ("x-acs-content-sha256".into(), body.clone()),
    ];
    if let Some(t) = token {
        headers.push(("x-acs-security-token".into(), t.into()));
    }
    let mut signed: Vec<String> = headers.iter().map(|(n, _)| n.clone()).collect();
    signed.sort();
    let req = acs3::Request {
        method: "GET",
        path: "/2023-03-30/functions",
        query: "limit=10",
        headers: &headers,
        payload_sha256: &body,
    };
    let sig = acs3::sign(
        secret,
        &acs3::string_to_sign(&acs3::canonical_request(&req, &signed).unwrap()),
    );
    let authz = format!(
        "Credential={ak},SignedHeaders={},Signature={sig}",
        signed.join(";")
    );
    a.verify_signed(&SignedRequest {
        authorization: &authz,
        method: "GET",
        path: "/2023-03-30/functions",
        query: "limit=10",
        headers: &headers,
        body_sha256: &body,
    })
    .await
}

#[tokio::test]
async fn access_keys_sign_requests_once_per_nonce_within_the_skew() {
    let (_d, a) = auth();
    let (key, secret) = a.create_key("ci").await.unwrap();
    let ak = key.access_key_id.as_str();
    assert!(ak.starts_with("LTAI") && ak.len() == 24, "{ak}");
    let p = call(&a, ak, &secret, None, &date(0), "n1").await.unwrap();
    assert!(matches!(p, Principal::Account { .. }));
    let e = call(&a, ak, &secret, None, &date(0), "n1")
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::NonceUsed(_)), "{e}");
    let e = call(&a, ak, "wrong", None, &date(0), "n2")
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::SignatureMismatch(_)), "{e}");
    // A refused signature does not use up its nonce.
    call(&a, ak, &secret, None, &date(0), "n2").await.unwrap();
    let e = call(&a, ak, &secret, None, &date(-16 * 60), "n3")
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::Skewed { .. }), "{e}");
    let e = call(&a, ak, &secret, None, &date(16 * 60), "n3")
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::Skewed { .. }), "{e}");
    call(&a, ak, &secret, None, &date(14 * 60), "n3")
        .await
        .unwrap();
    let e = call(&a, "LTAInope", &secret, None, &date(0), "n4")
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::UnknownKey(_)), "{e}");
    assert_eq!(a.list_keys().await.unwrap().len(), 1);
    a.delete_key(ak).await.unwrap();
    let e = call(&a, ak, &secret, None, &date(0), "n5")
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::UnknownKey(_)), "{e}");
    assert!(matches!(
        a.delete_key(ak).await,
        Err(AuthError::NotFound { .. })
    ));
    assert!(a.verify_bearer("admintoken-0123456789").is_ok());
    assert!(a.verify_bearer("admintoken-012345678").is_err());
}

#[tokio::test]
async fn role_credentials_carry_the_roles_policy_until_the_role_is_deleted() {
    let (_d, a) = auth();
    let policy = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"fc:Get*","Resource":"acs:fc:*:*:functions/*"}]}"#;
    a.create_role("Reader", "", policy).await.unwrap();
    assert!(matches!(
        a.create_role("reader", "", policy).await,
        Err(AuthError::Conflict(_))
    ));
    assert!(matches!(
        a.create_role("bad name", "", policy).await,
        Err(AuthError::Invalid(_))
    ));
    assert!(
        a.credentials_for("acs:ram::999:role/reader")
            .await
            .is_none()
    );
    assert!(
        a.credentials_for("acs:ram::123:role/nobody")
            .await
            .is_none()
    );
    // RAM ARNs spell role names in lower case.
    let c = a.credentials_for("acs:ram::123:role/reader").await.unwrap();
    let again = a.credentials_for("acs:ram::123:role/reader").await.unwrap();
    assert_eq!(c, again, "shared until refreshed");
    let left = c.expiration.duration_since(SystemTime::now()).unwrap();
    assert!(left > Duration::from_secs(35 * 3600), "{left:?}");
    let p = call(
        &a,
        &c.access_key_id,
        &c.access_key_secret,
        Some(&c.security_token),
        &date(0),
        "s1",
    )
    .await
    .unwrap();
    let fun = "acs:fc:cn-hangzhou:123:functions/f";
    p.authorize("fc:GetFunction", fun).unwrap();
    let e = p.authorize("fc:InvokeFunction", fun).unwrap_err();
    assert!(e.to_string().contains("fc:InvokeFunction"), "{e}");
    // A token presented with another key id, or none, is refused.
    let e = call(
        &a,
        "STS.other",
        &c.access_key_secret,
        Some(&c.security_token),
        &date(0),
        "s2",
    )
    .await
    .unwrap_err();
    assert!(matches!(e, AuthError::BadSecurityToken(_)), "{e}");
    let e = call(
        &a,
        &c.access_key_id,
        &c.access_key_secret,
        None,
        &date(0),
        "s3",
    )
    .await
    .unwrap_err();
    assert!(matches!(e, AuthError::MissingHeader(_)), "{e}");
    a.delete_role("READER").await.unwrap();
    let e = call(
        &a,
        &c.access_key_id,
        &c.access_key_secret,
        Some(&c.security_token),
        &date(0),
        "s4",
    )
    .await
    .unwrap_err();
    assert!(matches!(e, AuthError::BadSecurityToken(_)), "{e}");
    assert!(
        a.credentials_for("acs:ram::123:role/reader")
            .await
            .is_none()
    );
}
