//! The CDN control plane on the API listener (cdn.md §1): RPC style at `/`, the action from
//! `x-acs-action` or `Action=`, parameters from the query string and a form body merged, answers
//! and errors in Alibaba's RPC shape (`{"RequestId","HostId","Code","Message"}`).

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use fnbridge_auth::Principal;
use fnbridge_cdn::CdnError;
use fnbridge_cdn::rpc::{Action, Params};
use fnbridge_event::limits::MAX_API_BODY;
use serde_json::{Value, json};

use crate::router::AppState;

/// Query and form parameters, decoded, in order (query first).
pub(crate) fn params(query: &str, form: &[u8]) -> Vec<(String, String)> {
    let dec = |s: &str| {
        let s = s.replace('+', " ");
        percent_decode(&s)
    };
    let mut out = Vec::new();
    for part in [query.as_bytes(), form] {
        for pair in String::from_utf8_lossy(part)
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            out.push((dec(k), dec(v)));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(x) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a request to `/` is form-encoded (its body holds parameters).
pub(crate) fn is_form(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// An RPC error body with the request id filled in by the caller.
pub(crate) fn error_response(e: &CdnError, request_id: &str) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({"RequestId": request_id, "HostId": "cdn.aliyuncs.com", "Code": e.code, "Message": e.message});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn request_id(req: &Request) -> String {
    req.extensions()
        .get::<crate::router::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

/// `GET|POST /`: one CDN action.
pub(crate) async fn rpc(State(state): State<AppState>, req: Request) -> Response {
    let rid = request_id(&req);
    let Some(cdn) = state.cdn.clone() else {
        let e = CdnError::new(
            503,
            "ServiceUnavailable",
            "the CDN is not enabled on this server (--cdn-listen off)",
        );
        return error_response(&e, &rid);
    };
    let query = req.uri().query().unwrap_or("").to_owned();
    let form = is_form(&req);
    let principal = req.extensions().get::<Principal>().cloned();
    let action = req
        .headers()
        .get("x-acs-action")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Bytes = match axum::body::to_bytes(req.into_body(), MAX_API_BODY).await {
        Ok(b) => b,
        Err(e) => return error_response(&CdnError::invalid("body", e), &rid),
    };
    let p = params(&query, if form { &body } else { &[] });
    let action = action.or_else(|| {
        p.iter()
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.clone())
    });
    let Some(action) = action else {
        return error_response(&CdnError::missing("Action"), &rid);
    };
    if let Some(principal) = principal {
        let cfg = state.dispatcher.config();
        // CDN's RAM resource: the domain the action names, else every domain.
        let domain = p
            .iter()
            .rev()
            .find(|(k, _)| k == "DomainName")
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty() && !v.contains(','))
            .unwrap_or("*");
        let resource = format!("acs:cdn:*:{}:domain/{domain}", cfg.account_id);
        if let Err(e) = principal.authorize(&format!("cdn:{action}"), &resource) {
            return error_response(&CdnError::new(403, "Forbidden.RAM", e.to_string()), &rid);
        }
    }
    let result = match Action::parse(&action, &Params(&p)) {
        Ok(a) => a.handle(&cdn).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(mut v) => {
            if let Value::Object(m) = &mut v {
                m.insert("RequestId".into(), json!(rid));
            }
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                v.to_string(),
            )
                .into_response()
        }
        Err(e) => error_response(&e, &rid),
    }
}
