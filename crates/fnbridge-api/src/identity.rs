//! Who a request is, and whether it may do what it asks: the authentication middleware (the
//! admin token as `Bearer`, or an ACS3-HMAC-SHA256 signature with an access key or a role's STS
//! credentials), the map from each route to its RAM action and resource, and the fnbridge
//! extension endpoints that manage access keys (`/keys`) and roles (`/roles`).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fnbridge_auth::{AuthError, SignedRequest, acs_eb, acs3};
use fnbridge_event::limits::MAX_API_BODY;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::router::AppState;

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let e = match e {
            AuthError::Store(s) => return ApiError::from(s),
            other => other,
        };
        let forbidden = |code| ApiError::new(StatusCode::FORBIDDEN, code, e.to_string());
        match &e {
            AuthError::Store(_) => ApiError::internal(&e),
            AuthError::Invalid(_) | AuthError::BadAuthorization(_) => {
                ApiError::invalid(e.to_string())
            }
            AuthError::MissingHeader(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "MissingRequiredHeader",
                e.to_string(),
            ),
            AuthError::BadToken | AuthError::UnknownKey(_) => forbidden("InvalidAccessKeyID"),
            AuthError::BadSecurityToken(_) => forbidden("InvalidSecurityToken"),
            AuthError::ExpiredSecurityToken => forbidden("InvalidSecurityToken.Expired"),
            AuthError::SignatureMismatch(_) => forbidden("SignatureNotMatch"),
            AuthError::Skewed { .. } => forbidden("RequestTimeTooSkewed"),
            AuthError::NonceUsed(_) => forbidden("SignatureNonceUsed"),
            AuthError::Denied { .. } => forbidden("AccessDenied"),
            AuthError::NonceCacheFull => {
                let mut a = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ResourceThrottled",
                    e.to_string(),
                );
                a.retry_after = Some(1);
                a
            }
            AuthError::NotFound { kind, .. } => ApiError::not_found(
                if *kind == "role" {
                    "EntityNotExist.Role"
                } else {
                    "EntityNotExist.AccessKey"
                },
                e.to_string(),
            ),
            AuthError::Conflict(_) => ApiError::conflict("EntityAlreadyExists.Role", e.to_string()),
            AuthError::LimitExceeded(_) => {
                ApiError::new(StatusCode::CONFLICT, "LimitExceeded", e.to_string())
            }
        }
    }
}

/// The RAM action and resource of a request, from its method and path; `None` for a path no
/// route serves (answered `PathNotSupported` without doing anything).
pub(crate) fn action_for(
    method: &Method,
    path: &str,
    region: &str,
    account: &str,
) -> Option<(&'static str, String)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let fc = |name: &str| format!("acs:fc:{region}:{account}:functions/{name}");
    let own = |what: &str| format!("acs:fnbridge:{region}:{account}:{what}");
    let m = method.as_str();
    let action = match (m, segs.as_slice()) {
        ("POST", ["2023-03-30", "functions"]) => ("fc:CreateFunction", fc("*")),
        ("GET", ["2023-03-30", "functions"]) => ("fc:ListFunctions", fc("*")),
        ("GET", ["2023-03-30", "async-invoke-configs"]) => ("fc:ListAsyncInvokeConfigs", fc("*")),
        (_, ["2023-03-30", "functions", name, rest @ ..]) => {
            let r = fc(name);
            let a = match (m, rest) {
                ("GET", []) => "fc:GetFunction",
                ("PUT", []) => "fc:UpdateFunction",
                ("DELETE", []) => "fc:DeleteFunction",
                ("GET", ["code"]) => "fc:GetFunctionCode",
                ("POST", ["invocations"]) => "fc:InvokeFunction",
                ("POST", ["versions"]) => "fc:PublishFunctionVersion",
                ("GET", ["versions"]) => "fc:ListFunctionVersions",
                ("DELETE", ["versions", _]) => "fc:DeleteFunctionVersion",
                ("POST", ["aliases"]) => "fc:CreateAlias",
                ("GET", ["aliases"]) => "fc:ListAliases",
                ("GET", ["aliases", _]) => "fc:GetAlias",
                ("PUT", ["aliases", _]) => "fc:UpdateAlias",
                ("DELETE", ["aliases", _]) => "fc:DeleteAlias",
                ("POST", ["triggers"]) => "fc:CreateTrigger",
                ("GET", ["triggers"]) => "fc:ListTriggers",
                ("GET", ["triggers", _]) => "fc:GetTrigger",
                ("PUT", ["triggers", _]) => "fc:UpdateTrigger",
                ("DELETE", ["triggers", _]) => "fc:DeleteTrigger",
                ("GET", ["async-invoke-config"]) => "fc:GetAsyncInvokeConfig",
                ("PUT", ["async-invoke-config"]) => "fc:PutAsyncInvokeConfig",
                ("DELETE", ["async-invoke-config"]) => "fc:DeleteAsyncInvokeConfig",
                ("GET", ["async-tasks"]) => "fc:ListAsyncTasks",
                ("GET", ["async-tasks", _]) => "fc:GetAsyncTask",
                // fnbridge extensions on a function.
                ("GET", ["logs"]) => "fnbridge:GetFunctionLogs",
                ("GET", ["test-events"]) => "fnbridge:ListTestEvents",
                ("GET", ["test-events", _]) => "fnbridge:GetTestEvent",
                ("PUT", ["test-events", _]) => "fnbridge:PutTestEvent",
                ("DELETE", ["test-events", _]) => "fnbridge:DeleteTestEvent",
                _ => return None,
            };
            (a, r)
        }
        ("POST", ["events"]) => ("fnbridge:PutEvents", own("events")),
        ("POST", ["events", "explain"]) => ("fnbridge:ExplainEvent", own("events")),
        ("POST", ["openapi", "putEvents"]) => (
            "eventbridge:PutEvents",
            format!("acs:eventbridge:{region}:{account}:eventbus/*"),
        ),
        ("POST", ["test-event-pattern"]) => (
            "eventbridge:TestEventPattern",
            format!("acs:eventbridge:{region}:{account}:eventbus/*"),
        ),
        ("POST", ["buses"]) => (
            "eventbridge:CreateEventBus",
            format!("acs:eventbridge:{region}:{account}:eventbus/*"),
        ),
        ("GET", ["buses"]) => (
            "eventbridge:ListEventBuses",
            format!("acs:eventbridge:{region}:{account}:eventbus/*"),
        ),
        ("GET", ["buses", bus]) => (
            "eventbridge:GetEventBus",
            format!("acs:eventbridge:{region}:{account}:eventbus/{bus}"),
        ),
        ("DELETE", ["buses", bus]) => (
            "eventbridge:DeleteEventBus",
            format!("acs:eventbridge:{region}:{account}:eventbus/{bus}"),
        ),
        ("POST", ["archives"]) => (
            "eventbridge:CreateArchive",
            format!("acs:eventbridge:{region}:{account}:archive/*"),
        ),
        ("GET", ["archives"]) => (
            "eventbridge:ListArchives",
            format!("acs:eventbridge:{region}:{account}:archive/*"),
        ),
        ("GET", ["archives", name]) => (
            "eventbridge:DescribeArchive",
            format!("acs:eventbridge:{region}:{account}:archive/{name}"),
        ),
        ("DELETE", ["archives", name]) => (
            "eventbridge:DeleteArchive",
            format!("acs:eventbridge:{region}:{account}:archive/{name}"),
        ),
        ("POST", ["replays"]) => (
            "eventbridge:StartReplay",
            format!("acs:eventbridge:{region}:{account}:replay/*"),
        ),
        ("GET", ["replays"]) => (
            "eventbridge:ListReplays",
            format!("acs:eventbridge:{region}:{account}:replay/*"),
        ),
        ("GET", ["replays", name]) => (
            "eventbridge:DescribeReplay",
            format!("acs:eventbridge:{region}:{account}:replay/{name}"),
        ),
        ("POST", ["replays", name, "cancel"]) => (
            "eventbridge:CancelReplay",
            format!("acs:eventbridge:{region}:{account}:replay/{name}"),
        ),
        ("POST", ["buses", bus, "events"]) => (
            "eventbridge:PutEvents",
            format!("acs:eventbridge:{region}:{account}:eventbus/{bus}"),
        ),
        ("GET", ["tasks"]) => ("fnbridge:ListTasks", own("tasks")),
        ("GET", ["stats"]) => ("fnbridge:GetStats", own("stats")),
        ("GET", ["templates", ..]) => ("fnbridge:GetTemplates", own("templates")),
        ("GET", ["dlq"]) => ("fnbridge:ListDeadLetters", own("dlq")),
        ("GET", ["dlq", _]) => ("fnbridge:GetDeadLetter", own("dlq")),
        ("DELETE", ["dlq", _]) => ("fnbridge:DeleteDeadLetter", own("dlq")),
        ("POST", ["dlq", _, "redrive"]) => ("fnbridge:RedriveDeadLetter", own("dlq")),
        ("POST", ["keys"]) => ("ram:CreateAccessKey", format!("acs:ram::{account}:user/*")),
        ("GET", ["keys"]) => ("ram:ListAccessKeys", format!("acs:ram::{account}:user/*")),
        ("DELETE", ["keys", _]) => ("ram:DeleteAccessKey", format!("acs:ram::{account}:user/*")),
        ("POST", ["roles"]) => ("ram:CreateRole", format!("acs:ram::{account}:role/*")),
        ("GET", ["roles"]) => ("ram:ListRoles", format!("acs:ram::{account}:role/*")),
        ("GET", ["roles", n]) => ("ram:GetRole", format!("acs:ram::{account}:role/{n}")),
        ("DELETE", ["roles", n]) => ("ram:DeleteRole", format!("acs:ram::{account}:role/{n}")),
        _ => return None,
    };
    Some(action)
}

/// The middleware: decides who the request is, checks the route's action against it, and
/// passes the request on with its `Principal` as an extension.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let rpc = req.uri().path() == "/";
    let rid = req
        .extensions()
        .get::<crate::router::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    match authorize(&state, req).await {
        Ok(req) => next.run(req).await,
        // The CDN's RPC clients read Alibaba's RPC error codes.
        Err(e) if rpc => {
            let code = match e.code {
                "SignatureNotMatch" => "SignatureDoesNotMatch",
                "InvalidAccessKeyID" => "InvalidAccessKeyId.NotFound",
                "AccessDenied" if e.status == StatusCode::UNAUTHORIZED => "MissingParameter",
                "InvalidArgument" | "MissingRequiredHeader" => "InvalidParameter",
                c => c,
            };
            let status = if code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId.NotFound"
            {
                StatusCode::BAD_REQUEST
            } else {
                e.status
            };
            crate::cdn::error_response(
                &fnbridge_cdn::CdnError::new(status.as_u16(), code, e.message),
                &rid,
            )
        }
        Err(e) => e.into_response(),
    }
}

async fn authorize(state: &AppState, req: Request) -> Result<Request, ApiError> {
    let auth = state.dispatcher.auth();
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    // RPC-style CDN requests (aliyun CLI, aliyun-python-sdk-core) sign in the query instead.
    if value.is_none() && req.uri().path() == "/" {
        let (parts, body) = req.into_parts();
        let bytes: Bytes = axum::body::to_bytes(body, MAX_API_BODY)
            .await
            .map_err(|e| ApiError::invalid(format!("cannot read the request body: {e}")))?;
        let probe = Request::from_parts(parts, Body::empty());
        let form: &[u8] = if crate::cdn::is_form(&probe) {
            &bytes
        } else {
            &[]
        };
        let params = crate::cdn::params(probe.uri().query().unwrap_or(""), form);
        if !params.iter().any(|(k, _)| k == "Signature") {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "MissingParameter",
                "sign the request: RPC parameters Signature, AccessKeyId, SignatureNonce, Timestamp (HMAC-SHA1), or ACS3-HMAC-SHA256",
            ));
        }
        let principal = auth.verify_rpc(probe.method().as_str(), &params).await?;
        let (parts, _) = probe.into_parts();
        let mut req = Request::from_parts(parts, Body::from(bytes));
        req.extensions_mut().insert(principal);
        return Ok(req);
    }
    let Some(value) = value else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "AccessDenied",
            "missing 'Authorization: Bearer <token>' header (the token is in the data dir's admin.token), or sign the request with an access key (ACS3-HMAC-SHA256)",
        ));
    };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let (principal, req) = if value.trim().starts_with(acs_eb::PREFIX) {
        // The EventBridge SDK's scheme: it signs headers and path, not the body, so it is
        // taken only where the EventBridge SDK sends it, never for the FC API's writes.
        let path = req.uri().path();
        if path != "/openapi/putEvents" && !path.starts_with("/buses/") {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "AccessDenied",
                "the acs: signature (EventBridge SDK) is accepted only for PutEvents: sign with ACS3-HMAC-SHA256 or use Bearer",
            ));
        }
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let query: Vec<(String, String)> = req
            .uri()
            .query()
            .map(|q| {
                // As the SDK signs them: the pairs as sent (it sends none for PutEvents).
                q.split('&')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap_or((p, ""));
                        (k.to_owned(), v.to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let principal = auth
            .verify_eventbridge(
                value.trim(),
                &acs_eb::Request {
                    method: req.method().as_str(),
                    path: req.uri().path(),
                    query: &query,
                    headers: &headers,
                },
            )
            .await?;
        (principal, req)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        (auth.verify_bearer(rest)?, req)
    } else if scheme.eq_ignore_ascii_case(acs3::ALGORITHM) {
        // The body is part of what is signed: read it (bounded) and hand the same bytes on.
        let (parts, body) = req.into_parts();
        let bytes: Bytes = axum::body::to_bytes(body, MAX_API_BODY)
            .await
            .map_err(|e| {
                if std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                {
                    ApiError::too_large(MAX_API_BODY)
                } else {
                    ApiError::invalid(format!("cannot read the request body: {e}"))
                }
            })?;
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body_sha256 = acs3::sha256_hex(&bytes);
        let principal = auth
            .verify_signed(&SignedRequest {
                authorization: rest,
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query().unwrap_or(""),
                headers: &headers,
                body_sha256: &body_sha256,
            })
            .await?;
        (principal, Request::from_parts(parts, Body::from(bytes)))
    } else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "AccessDenied",
            format!("unsupported Authorization scheme '{scheme}': use Bearer or ACS3-HMAC-SHA256"),
        ));
    };
    let cfg = state.dispatcher.config();
    if let Some((action, resource)) =
        action_for(req.method(), req.uri().path(), &cfg.region, &cfg.account_id)
    {
        principal.authorize(action, &resource)?;
    }
    let mut req = req;
    req.extensions_mut().insert(principal);
    Ok(req)
}

// ---- /keys and /roles (fnbridge extensions) ----

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct KeyInput {
    #[serde(default)]
    description: String,
}

fn key_json(k: &fnbridge_store::identity::AccessKey) -> Value {
    json!({
        "accessKeyId": k.access_key_id,
        "description": k.description,
        "createdTime": crate::time::rfc3339_ms(k.created_ms),
    })
}

pub(crate) async fn create_key(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let input: KeyInput = if body.is_empty() {
        KeyInput::default()
    } else {
        crate::body::json(&body)?
    };
    let (key, secret) = state
        .dispatcher
        .auth()
        .create_key(&input.description)
        .await?;
    let mut v = key_json(&key);
    v["accessKeySecret"] = json!(secret);
    Ok(Json(v))
}

pub(crate) async fn list_keys(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let keys = state.dispatcher.auth().list_keys().await?;
    Ok(Json(
        json!({"accessKeys": keys.iter().map(key_json).collect::<Vec<_>>()}),
    ))
}

pub(crate) async fn delete_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.dispatcher.auth().delete_key(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RoleInput {
    role_name: String,
    #[serde(default)]
    description: String,
    /// The policy document: a JSON object, or a string holding one (as RAM's API takes it).
    policy: Value,
}

fn role_json(state: &AppState, r: &fnbridge_store::identity::Role) -> Value {
    let cfg = state.dispatcher.config();
    json!({
        "roleName": r.name,
        "arn": format!("acs:ram::{}:role/{}", cfg.account_id, r.name.to_ascii_lowercase()),
        "description": r.description,
        "policy": serde_json::from_str::<Value>(&r.policy).unwrap_or(Value::Null),
        "createdTime": crate::time::rfc3339_ms(r.created_ms),
    })
}

pub(crate) async fn create_role(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let input: RoleInput = crate::body::json(&body)?;
    let policy = match &input.policy {
        Value::String(s) => s.clone(),
        v @ Value::Object(_) => v.to_string(),
        _ => {
            return Err(ApiError::invalid(
                "policy: a JSON object (the RAM policy document)",
            ));
        }
    };
    let role = state
        .dispatcher
        .auth()
        .create_role(&input.role_name, &input.description, &policy)
        .await?;
    Ok(Json(role_json(&state, &role)))
}

pub(crate) async fn get_role(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let role = state.dispatcher.auth().get_role(&name).await?;
    Ok(Json(role_json(&state, &role)))
}

pub(crate) async fn list_roles(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let roles = state.dispatcher.auth().list_roles().await?;
    Ok(Json(
        json!({"roles": roles.iter().map(|r| role_json(&state, r)).collect::<Vec<_>>()}),
    ))
}

pub(crate) async fn delete_role(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.dispatcher.auth().delete_role(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fc_route_has_its_action_and_function_resource() {
        let a = |m: Method, p: &str| action_for(&m, p, "r", "1");
        let f = "acs:fc:r:1:functions/f".to_string();
        assert_eq!(
            a(Method::POST, "/2023-03-30/functions/f/invocations"),
            Some(("fc:InvokeFunction", f.clone()))
        );
        assert_eq!(
            a(Method::GET, "/2023-03-30/functions/f/code"),
            Some(("fc:GetFunctionCode", f.clone()))
        );
        assert_eq!(
            a(Method::DELETE, "/2023-03-30/functions/f/triggers/t"),
            Some(("fc:DeleteTrigger", f.clone()))
        );
        assert_eq!(
            a(Method::GET, "/2023-03-30/functions/f/async-tasks/x"),
            Some(("fc:GetAsyncTask", f))
        );
        assert_eq!(
            a(Method::GET, "/2023-03-30/functions").map(|x| x.0),
            Some("fc:ListFunctions")
        );
        assert_eq!(
            a(Method::POST, "/keys").map(|x| x.0),
            Some("ram:CreateAccessKey")
        );
        assert_eq!(a(Method::PATCH, "/2023-03-30/functions/f"), None);
        assert_eq!(a(Method::GET, "/nothing"), None);
    }
}
