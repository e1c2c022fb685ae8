//! The listener's front: one HTTP endpoint for three protocols, told apart by their signature
//! (`Authorization` scheme or presign query). S3 requests go to s3s as they are (it checks
//! SigV4, decodes `aws-chunked`, speaks the XML). OSS and COS requests are verified here by
//! their own signature module, translated to their S3 form (headers `x-oss-`/`x-cos-` to
//! `x-amz-`, virtual host to path style, signature parameters dropped), served by the same
//! s3s service, and their responses translated back (request-id and metadata header names, OSS
//! upper-case ETags, the dialect's error body, URL-encoded keys in a multi-delete answer to
//! `encoding-type=url`). OSS AppendObject, which S3 lacks, is served here directly. Every
//! operation, whatever its dialect, is then authorized as its OSS RAM action on its resource
//! (`ram`) for the caller (STS credentials: their role's policy), in s3s's access hook
//! (`Access`), before it runs.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fnbridge_store::objects::ObjectRecord;
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, Uri};
use hyper::body::Incoming;
use s3s::Body;
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::{CopyObjectInput, DeleteObjectsInput, UploadPartCopyInput};
use s3s::host::{S3Host, VirtualHost};
use s3s::path::S3Path;
use s3s::{S3Request, S3Result, s3_error};

use crate::error::{Code, ObjError};
use crate::ram;
use crate::s3::S3Service;
use crate::secrets::SecretLookup;
use crate::sig::{self, ReqView};
use crate::store::{ObjectStore, PutMeta, ReqCtx};

/// The protocol of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    S3,
    Oss,
    Cos,
}

/// Set on every request before s3s sees it; read by `S3Service` for events.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub request_id: String,
    pub source_ip: String,
    pub dialect: Dialect,
    /// The request was verified by the front (OSS, COS); s3s sees it unsigned.
    pub verified: bool,
    /// Who signed it, once verified (by the front, or by s3s for SigV4).
    pub caller: Option<Caller>,
}

/// The access key (and STS token) a request was signed with.
#[derive(Debug, Clone)]
pub struct Caller {
    pub access_key_id: String,
    pub security_token: Option<String>,
}

/// A request id: 24 upper-case hex characters, as OSS spells them.
pub fn request_id() -> String {
    let v: u128 = rand::random();
    format!("{:024X}", v >> 32)
}

const TYPE_HEADER: &str = "x-fnbridge-object-type";
const CRC_HEADER: &str = "x-fnbridge-crc64";

/// Object headers the S3 operations set in a neutral form; the front names them per dialect.
pub(crate) fn object_headers(h: &mut HeaderMap, rec: &ObjectRecord) {
    if let Ok(v) = HeaderValue::from_str(rec.kind.as_str()) {
        h.insert(TYPE_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&rec.crc64.to_string()) {
        h.insert(CRC_HEADER, v);
    }
}

/// Settings of the endpoint.
#[derive(Debug, Clone)]
pub struct FrontConfig {
    /// Host names whose sub-domains name buckets (`bucket.localhost:9001`); ports are ignored.
    /// Besides these, `*.oss-*.aliyuncs.com`, `*.cos.*.myqcloud.com` and
    /// `*.s3.amazonaws.com` style hosts are always virtual-host style.
    pub domains: Vec<String>,
    /// How long a request head may take.
    pub header_timeout: Duration,
}

/// Bucket from a `Host`, for virtual-host-style requests.
fn host_bucket(domains: &[String], host: &str) -> Option<String> {
    let host = host
        .rsplit_once(':')
        .map(|(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
        .unwrap_or(host);
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return None;
    }
    let (first, rest) = host.split_once('.')?;
    let known = domains.iter().any(|d| d.eq_ignore_ascii_case(rest))
        || (rest.starts_with("oss-") && rest.ends_with(".aliyuncs.com"))
        || (rest.starts_with("cos.") && rest.ends_with(".myqcloud.com"))
        || rest.starts_with("s3.") && rest.ends_with(".amazonaws.com")
        || rest == "s3.amazonaws.com";
    known.then(|| first.to_ascii_lowercase())
}

struct Host(Arc<Vec<String>>);

impl S3Host for Host {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        Ok(match host_bucket(&self.0, host) {
            Some(b) => VirtualHost::new(host).with_bucket(b),
            None => VirtualHost::new(host),
        })
    }
}

struct Auth(Arc<dyn SecretLookup>);

#[async_trait::async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        // STS tokens are checked by `Access`, which sees the request's token.
        match self.0.secret_of(access_key) {
            Some(s) => Ok(SecretKey::from(s.0)),
            None => Err(s3_error!(InvalidAccessKeyId)),
        }
    }
}

struct Access {
    secrets: Arc<dyn SecretLookup>,
    identity: crate::events::Identity,
}

impl Access {
    /// Refuses with AccessDenied (403) what the caller's policy does not allow.
    fn allow(
        &self,
        caller: Option<&Caller>,
        action: &str,
        target: ram::Target<'_>,
    ) -> S3Result<()> {
        let Some(c) = caller else {
            return Err(s3_error!(AccessDenied, "the request is not signed"));
        };
        let resource = ram::resource(&self.identity, target);
        self.secrets
            .authorize(
                &c.access_key_id,
                c.security_token.as_deref(),
                action,
                &resource,
            )
            .map_err(|why| s3_error!(AccessDenied, "{}", why))
    }

    fn caller<T>(req: &S3Request<T>) -> Option<Caller> {
        req.extensions
            .get::<RequestInfo>()
            .and_then(|i| i.caller.clone())
    }

    /// A copy reads its source: `oss:GetObject` on it too.
    fn copy_source(&self, caller: Option<&Caller>, cs: &s3s::dto::CopySource) -> S3Result<()> {
        match cs {
            s3s::dto::CopySource::Bucket { bucket, key, .. } => {
                self.allow(caller, "oss:GetObject", ram::Target::Object(bucket, key))
            }
            _ => Err(s3_error!(
                InvalidArgument,
                "copy sources must name a bucket and key"
            )),
        }
    }
}

#[async_trait::async_trait]
impl s3s::access::S3Access for Access {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> S3Result<()> {
        let action = ram::action(cx.s3_op().name());
        let path: (Option<String>, Option<String>) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        let target = match &path {
            (Some(b), Some(k)) => ram::Target::Object(b, k),
            (Some(b), None) => ram::Target::Bucket(b),
            _ => ram::Target::Service,
        };
        if let Some(caller) = cx
            .extensions_mut()
            .get::<RequestInfo>()
            .filter(|i| i.verified)
            .and_then(|i| i.caller.clone())
        {
            return self.allow(Some(&caller), &action, target);
        }
        let Some(c) = cx.credentials() else {
            return Err(s3_error!(
                AccessDenied,
                "anonymous requests are not allowed: sign the request"
            ));
        };
        let ak = c.access_key.clone();
        let token = cx
            .headers()
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| {
                cx.uri().query().and_then(|q| {
                    q.split('&')
                        .find_map(|p| p.strip_prefix("X-Amz-Security-Token="))
                        .map(sig::decode)
                })
            });
        if self.secrets.secret(&ak, token.as_deref()).is_none() {
            return Err(s3_error!(
                InvalidAccessKeyId,
                "the security token does not match the access key"
            ));
        }
        let caller = Caller {
            access_key_id: ak,
            security_token: token,
        };
        self.allow(Some(&caller), &action, target)?;
        if let Some(i) = cx.extensions_mut().get_mut::<RequestInfo>() {
            i.caller = Some(caller);
        }
        Ok(())
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        self.copy_source(Self::caller(req).as_ref(), &req.input.copy_source)
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        self.copy_source(Self::caller(req).as_ref(), &req.input.copy_source)
    }

    /// The request was authorized on the bucket; each key is an `oss:DeleteObject` of its own.
    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        let caller = Self::caller(req);
        for o in &req.input.delete.objects {
            self.allow(
                caller.as_ref(),
                "oss:DeleteObject",
                ram::Target::Object(&req.input.bucket, &o.key),
            )?;
        }
        Ok(())
    }
}

/// The object-store endpoint: a hyper service for all three protocols.
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<EndpointInner>,
}

struct EndpointInner {
    s3s: s3s::service::S3Service,
    store: ObjectStore,
    secrets: Arc<dyn SecretLookup>,
    domains: Arc<Vec<String>>,
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What `Endpoint::translate` needs of the request beside the response.
struct Translation<'a> {
    /// The request id, for the dialect's headers and error body.
    rid: &'a str,
    /// The request listed a bucket's objects (OSS wants a `Type` in each).
    list: bool,
    /// A multi-delete asked `encoding-type=url`: the deleted keys are answered URL-encoded.
    url_deleted: bool,
    /// For a ListBuckets, the host it was sent to (OSS answers each bucket's endpoints).
    buckets_on: Option<&'a str>,
    /// The resource a COS error body names.
    resource: &'a str,
}
impl Endpoint {
    pub fn new(store: ObjectStore, secrets: Arc<dyn SecretLookup>, cfg: &FrontConfig) -> Endpoint {
        let domains = Arc::new(cfg.domains.clone());
        let mut b = s3s::service::S3ServiceBuilder::new(S3Service {
            store: store.clone(),
        });
        b.set_auth(Auth(secrets.clone()));
        b.set_access(Access {
            secrets: secrets.clone(),
            identity: store.identity().clone(),
        });
        b.set_host(Host(domains.clone()));
        let mut config = s3s::config::S3Config::default();
        config.xml_max_body_size = store.limits().max_xml_bytes;
        b.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(
            config,
        ))));
        Endpoint {
            inner: Arc::new(EndpointInner {
                s3s: b.build(),
                store,
                secrets,
                domains,
            }),
        }
    }

    /// Serves one request.
    pub async fn handle(&self, req: Request<Incoming>, remote: SocketAddr) -> Response<Body> {
        let rid = request_id();
        let (parts, body) = req.into_parts();
        let dialect = dialect_of(&parts.headers, parts.uri.query().unwrap_or(""));
        let has_body = parts.headers.contains_key(http::header::TRANSFER_ENCODING)
            || parts
                .headers
                .get(http::header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0");
        let info = RequestInfo {
            request_id: rid.clone(),
            source_ip: remote.ip().to_string(),
            dialect,
            verified: false,
            caller: None,
        };
        let mut resp = match dialect {
            Dialect::S3 => {
                let mut req = Request::from_parts(parts, Body::from(body));
                req.extensions_mut().insert(info);
                match self.inner.s3s.call(req).await {
                    Ok(r) => r,
                    Err(e) => error_response(
                        Dialect::S3,
                        &ObjError::new(Code::InternalError, format!("{:?}", e)),
                        &rid,
                    ),
                }
            }
            Dialect::Oss | Dialect::Cos => self.other(parts, body, info).await,
        };
        let refused = resp.status().is_client_error() || resp.status().is_server_error();
        let h = resp.headers_mut();
        // A request refused before its body was read (a signature or policy refusal, say)
        // leaves that body on the connection, so hyper will not reuse it: say so, or a client
        // pooling connections sends its next request into a closed socket.
        if has_body && refused {
            h.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        let rid_v = HeaderValue::from_str(&rid).unwrap_or(HeaderValue::from_static("0"));
        match dialect {
            Dialect::S3 => {
                h.insert("x-amz-request-id", rid_v.clone());
                h.insert("x-amz-id-2", rid_v);
                h.remove(TYPE_HEADER);
                h.remove(CRC_HEADER);
            }
            Dialect::Oss => {
                h.insert("x-oss-request-id", rid_v);
            }
            Dialect::Cos => {
                h.insert("x-cos-request-id", rid_v);
            }
        }
        resp
    }

    async fn other(
        &self,
        parts: http::request::Parts,
        body: Incoming,
        mut info: RequestInfo,
    ) -> Response<Body> {
        let d = info.dialect;
        let rid = info.request_id.clone();
        let host = parts
            .headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_default();
        let vbucket = host_bucket(&self.inner.domains, &host);
        let path = sig::decode(parts.uri.path());
        let rest = path.strip_prefix('/').unwrap_or(&path);
        let (bucket, key) = match vbucket {
            Some(b) => (Some(b), (!rest.is_empty()).then(|| rest.to_string())),
            None if rest.is_empty() => (None, None),
            None => match rest.split_once('/') {
                Some((b, "")) => (Some(b.to_string()), None),
                Some((b, k)) => (Some(b.to_string()), Some(k.to_string())),
                None => (Some(rest.to_string()), None),
            },
        };
        let raw_query = parts.uri.query().unwrap_or("").to_string();
        let view = ReqView {
            method: parts.method.as_str(),
            bucket: bucket.as_deref(),
            key: key.as_deref(),
            raw_query: &raw_query,
            headers: &parts.headers,
            now: now_s(),
        };
        let secrets = &*self.inner.secrets;
        let verified = match d {
            Dialect::Oss => {
                let auth = view.header("authorization").unwrap_or("");
                if auth.starts_with("OSS4-HMAC-SHA256") {
                    sig::oss_v4::verify_header(&view, secrets)
                } else if auth.starts_with("OSS ") {
                    sig::oss_v1::verify_header(&view, secrets)
                } else if !auth.is_empty() {
                    let scheme = auth.split_whitespace().next().unwrap_or("");
                    Err(ObjError::new(
                        Code::InvalidArgument,
                        format!(
                            "the signature scheme '{scheme}' is not supported (use OSS V1 or V4)"
                        ),
                    ))
                } else if view.query_value("x-oss-signature-version").is_some() {
                    sig::oss_v4::verify_query(&view, secrets)
                } else {
                    sig::oss_v1::verify_query(&view, secrets)
                }
            }
            _ => sig::cos::verify(&view, secrets),
        };
        let verified = match verified {
            Ok(v) => v,
            Err(e) => {
                let e = match (&bucket, &key) {
                    (_, Some(k)) => e.with_key(k),
                    (Some(b), None) => e.with_bucket(b),
                    _ => e,
                };
                return error_response(d, &e, &rid);
            }
        };
        info.verified = true;
        info.caller = Some(Caller {
            access_key_id: verified.access_key_id,
            security_token: verified.security_token,
        });
        let query = view.query();
        // OSS AppendObject has no S3 form: served here.
        if d == Dialect::Oss
            && parts.method == http::Method::POST
            && query.iter().any(|(k, _)| k == "append")
        {
            return self
                .append(&parts.headers, &query, bucket, key, body, &info)
                .await;
        }
        // The S3 form: path style, signature parameters dropped, headers renamed.
        let mut path = String::from("/");
        if let Some(b) = &bucket {
            path.push_str(b);
            path.push('/');
        }
        if let Some(k) = &key {
            path.push_str(
                &percent_encoding::utf8_percent_encode(k, sig::URI_ENCODE_SLASH_SAFE).to_string(),
            );
        }
        let kept: Vec<&str> = raw_query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let k = sig::decode(p.split('=').next().unwrap_or(""));
                !(k.starts_with("x-oss-")
                    || k.starts_with("q-")
                    || k.starts_with("x-cos-")
                    || matches!(
                        k.as_str(),
                        "OSSAccessKeyId" | "Expires" | "Signature" | "security-token"
                    ))
            })
            .collect();
        let uri = if kept.is_empty() {
            path
        } else {
            format!("{path}?{}", kept.join("&"))
        };
        let Ok(uri) = uri.parse::<Uri>() else {
            return error_response(
                d,
                &ObjError::new(Code::InvalidArgument, "the request path is not valid"),
                &rid,
            );
        };
        let mut headers = HeaderMap::new();
        for (k, v) in parts.headers.iter() {
            let name = k.as_str();
            let renamed = name
                .strip_prefix("x-oss-")
                .or_else(|| name.strip_prefix("x-cos-"));
            match renamed {
                Some("security-token" | "date" | "content-sha256") => {}
                Some("copy-source") => {
                    if let Some(v) = copy_source(d, v, &self.inner.domains) {
                        headers.insert("x-amz-copy-source", v);
                    }
                }
                Some(rest) => {
                    if let Ok(n) = HeaderName::from_bytes(format!("x-amz-{rest}").as_bytes()) {
                        headers.append(n, v.clone());
                    }
                }
                None if name == "authorization" || name == "host" => {}
                None => {
                    headers.append(k.clone(), v.clone());
                }
            }
        }
        // The request is path style now: a host s3s cannot take for a virtual host.
        headers.insert("host", HeaderValue::from_static("127.0.0.1"));
        // OSS bucket creation bodies carry OSS-only XML (StorageClass): not needed here.
        let is_bucket_put = parts.method == http::Method::PUT && key.is_none() && query.is_empty();
        let body = if is_bucket_put {
            Body::empty()
        } else {
            Body::from(body)
        };
        let mut req = Request::builder()
            .method(parts.method.clone())
            .uri(uri)
            .body(body)
            .unwrap_or_default();
        *req.headers_mut() = headers;
        if is_bucket_put {
            req.headers_mut().remove("content-length");
            req.headers_mut().remove("content-md5");
        }
        let list = parts.method == http::Method::GET && bucket.is_some() && key.is_none();
        // OSS multi-delete with `encoding-type=url`: the request's keys are plain XML (as oss2
        // and alibabacloud-oss-v2 send them); the answer's keys are URL-encoded.
        let url_deleted = d == Dialect::Oss
            && parts.method == http::Method::POST
            && query.iter().any(|(k, _)| k == "delete")
            && query
                .iter()
                .any(|(k, v)| k == "encoding-type" && v.eq_ignore_ascii_case("url"));
        let buckets = parts.method == http::Method::GET && bucket.is_none();
        req.extensions_mut().insert(info);
        let resp = match self.inner.s3s.call(req).await {
            Ok(r) => r,
            Err(e) => {
                return error_response(
                    d,
                    &ObjError::new(Code::InternalError, format!("{:?}", e)),
                    &rid,
                );
            }
        };
        // COS error bodies name the resource (`bucket-appid.cos.region.myqcloud.com/key`); its
        // SDK cannot read an error without it.
        let resource = format!("{host}{}", parts.uri.path());
        let how = Translation {
            rid: &rid,
            list,
            url_deleted,
            buckets_on: buckets.then_some(host.as_str()),
            resource: &resource,
        };
        self.translate(d, resp, how).await
    }

    /// An S3 response in the OSS or COS dialect.
    async fn translate(
        &self,
        d: Dialect,
        resp: Response<Body>,
        how: Translation<'_>,
    ) -> Response<Body> {
        let Translation {
            rid,
            list,
            url_deleted,
            buckets_on,
            resource,
        } = how;
        let (mut parts, mut body) = resp.into_parts();
        let mut headers = HeaderMap::new();
        let prefix = if d == Dialect::Oss {
            "x-oss-"
        } else {
            "x-cos-"
        };
        for (k, v) in parts.headers.iter() {
            let name = k.as_str();
            if let Some(rest) = name.strip_prefix("x-amz-") {
                if let Ok(n) = HeaderName::from_bytes(format!("{prefix}{rest}").as_bytes()) {
                    headers.append(n, v.clone());
                }
            } else if name == TYPE_HEADER && d == Dialect::Oss {
                headers.insert("x-oss-object-type", v.clone());
            } else if name == CRC_HEADER {
                if let Ok(n) = HeaderName::from_bytes(format!("{prefix}hash-crc64ecma").as_bytes())
                {
                    headers.insert(n, v.clone());
                }
            } else if name == "etag" && d == Dialect::Oss {
                let up = v.to_str().unwrap_or("").to_ascii_uppercase();
                headers.insert("etag", HeaderValue::from_str(&up).unwrap_or(v.clone()));
            } else if name != TYPE_HEADER {
                headers.append(k.clone(), v.clone());
            }
        }
        parts.headers = headers;
        if parts.status.is_client_error() || parts.status.is_server_error() {
            let bytes = body.store_all_limited(64 << 10).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            let code = xml_field(&text, "Code").unwrap_or_else(|| "InternalError".into());
            let message = xml_field(&text, "Message").unwrap_or_default();
            let code = dialect_code(d, &code);
            let extra: &[(&str, &str)] = if d == Dialect::Cos {
                &[("Resource", resource)]
            } else {
                &[]
            };
            let xml = error_xml(&code, &message, rid, extra);
            parts
                .headers
                .insert("content-type", HeaderValue::from_static("application/xml"));
            parts.headers.remove("content-length");
            return Response::from_parts(parts, Body::from(xml));
        }
        let xml = parts
            .headers
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/xml"));
        if xml && d == Dialect::Oss {
            // OSS answers without the S3 namespace (oss2 looks elements up by bare name), and
            // oss2 requires a `Type` in each listed object, which S3 lacks.
            let bytes = body.store_all_limited(16 << 20).await.unwrap_or_default();
            let mut text = String::from_utf8_lossy(&bytes)
                .replace(" xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"", "");
            if list {
                text = text.replace("</ETag>", "</ETag><Type>Normal</Type>");
            }
            if url_deleted {
                text = url_encode_keys(&text);
            }
            if let Some(host) = buckets_on {
                // oss2's ListBuckets wants each bucket's location and endpoints.
                let region = &self.inner.store.identity().region;
                text = text.replace(
                    "</CreationDate>",
                    &format!(
                        "</CreationDate><Location>oss-{region}</Location><ExtranetEndpoint>{h}</ExtranetEndpoint><IntranetEndpoint>{h}</IntranetEndpoint><StorageClass>Standard</StorageClass>",
                        h = xml_escape(host)
                    ),
                );
            }
            parts.headers.remove("content-length");
            return Response::from_parts(parts, Body::from(text));
        }
        Response::from_parts(parts, body)
    }

    async fn append(
        &self,
        headers: &HeaderMap,
        query: &[(String, String)],
        bucket: Option<String>,
        key: Option<String>,
        body: Incoming,
        info: &RequestInfo,
    ) -> Response<Body> {
        let rid = &info.request_id;
        let (Some(bucket), Some(key)) = (bucket, key) else {
            return error_response(
                Dialect::Oss,
                &ObjError::new(Code::InvalidArgument, "append needs a bucket and a key"),
                rid,
            );
        };
        // AppendObject is `oss:PutObject` (it never reaches s3s's access hook).
        if let Some(c) = &info.caller {
            let resource = ram::resource(
                self.inner.store.identity(),
                ram::Target::Object(&bucket, &key),
            );
            if let Err(why) = self.inner.secrets.authorize(
                &c.access_key_id,
                c.security_token.as_deref(),
                "oss:PutObject",
                &resource,
            ) {
                return error_response(
                    Dialect::Oss,
                    &ObjError::new(Code::AccessDenied, why).with_key(&key),
                    rid,
                );
            }
        }
        let position = query
            .iter()
            .find(|(k, _)| k == "position")
            .and_then(|(_, v)| v.parse::<u64>().ok());
        let Some(position) = position else {
            return error_response(
                Dialect::Oss,
                &ObjError::new(Code::InvalidArgument, "append needs position=N"),
                rid,
            );
        };
        let meta: Vec<(String, String)> = headers
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.as_str().strip_prefix("x-oss-meta-")?.to_string(),
                    v.to_str().ok()?.to_string(),
                ))
            })
            .collect();
        let pm = PutMeta {
            content_type: headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            meta,
        };
        let stream = Body::from(body).map(|r| r.map_err(|e| e.to_string()));
        let ctx = ReqCtx {
            request_id: info.request_id.clone(),
            source_ip: info.source_ip.clone(),
        };
        match self
            .inner
            .store
            .append(&bucket, &key, position, stream, pm, &ctx)
            .await
        {
            Ok(rec) => {
                let mut r = Response::new(Body::empty());
                let h = r.headers_mut();
                if let Ok(v) =
                    HeaderValue::from_str(&format!("\"{}\"", rec.etag.to_ascii_uppercase()))
                {
                    h.insert("etag", v);
                }
                if let Ok(v) = HeaderValue::from_str(&rec.size.to_string()) {
                    h.insert("x-oss-next-append-position", v);
                }
                if let Ok(v) = HeaderValue::from_str(&rec.crc64.to_string()) {
                    h.insert("x-oss-hash-crc64ecma", v);
                }
                r
            }
            Err(e) => error_response(Dialect::Oss, &e.with_key(&key), rid),
        }
    }
}

/// The protocol of a request, from its signature.
pub fn dialect_of(headers: &HeaderMap, query: &str) -> Dialect {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth.starts_with("OSS") {
        return Dialect::Oss;
    }
    if auth.contains("q-sign-algorithm=") {
        return Dialect::Cos;
    }
    if !auth.is_empty() {
        return Dialect::S3;
    }
    let has = |name: &str| query.split('&').any(|p| p.split('=').next() == Some(name));
    if has("OSSAccessKeyId") || has("x-oss-signature-version") || has("x-oss-credential") {
        Dialect::Oss
    } else if has("q-sign-algorithm") {
        Dialect::Cos
    } else {
        Dialect::S3
    }
}

/// `x-oss-copy-source: /{bucket}/{encoded key}` passes as it is; COS sends
/// `{bucket}.cos.{region}.myqcloud.com/{key}`, made `/{bucket}/{key}` here.
fn copy_source(d: Dialect, v: &HeaderValue, domains: &[String]) -> Option<HeaderValue> {
    let s = v.to_str().ok()?;
    if d == Dialect::Cos && !s.starts_with('/') {
        let (host, key) = s.split_once('/')?;
        let bucket = host_bucket(domains, host)
            .unwrap_or_else(|| host.split('.').next().unwrap_or("").to_string());
        return HeaderValue::from_str(&format!("/{bucket}/{key}")).ok();
    }
    Some(v.clone())
}

/// The OSS or COS name of an S3 error code.
fn dialect_code(d: Dialect, code: &str) -> String {
    match (d, code) {
        (Dialect::Oss, "BadDigest") => "InvalidDigest".into(),
        (Dialect::Oss, "KeyTooLongError") => "InvalidObjectName".into(),
        (Dialect::Oss | Dialect::Cos, "BucketAlreadyOwnedByYou") => "BucketAlreadyExists".into(),
        (Dialect::Oss, "MalformedXML") => "MalformedXML".into(),
        _ => code.to_string(),
    }
}

fn xml_field(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&close)? + start;
    Some(xml_unescape(&text[start..end]))
}

/// A multi-delete answer with its `<Key>`s URL-encoded and `<EncodingType>url` added, as OSS
/// answers `encoding-type=url` (oss2 and alibabacloud-oss-v2 decode the keys when it is there).
fn url_encode_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(i) = rest.find("<Key>") {
        let start = i + "<Key>".len();
        let Some(len) = rest[start..].find("</Key>") else {
            break;
        };
        out.push_str(&rest[..start]);
        let key = xml_unescape(&rest[start..start + len]);
        out.push_str(
            &percent_encoding::utf8_percent_encode(&key, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        );
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    match out.find("<DeleteResult>") {
        Some(i) => {
            let at = i + "<DeleteResult>".len();
            format!(
                "{}<EncodingType>url</EncodingType>{}",
                &out[..at],
                &out[at..]
            )
        }
        None => out,
    }
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn error_xml(code: &str, message: &str, rid: &str, extra: &[(&str, &str)]) -> String {
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>{}</Code>\n  <Message>{}</Message>\n  <RequestId>{rid}</RequestId>\n  <HostId>fnbridge</HostId>\n",
        xml_escape(code),
        xml_escape(message)
    );
    for (k, v) in extra {
        x.push_str(&format!("  <{k}>{}</{k}>\n", xml_escape(v)));
    }
    x.push_str("</Error>\n");
    x
}

/// An error in a dialect's XML (errors raised before or outside s3s).
fn error_response(d: Dialect, e: &ObjError, rid: &str) -> Response<Body> {
    let code = dialect_code(d, e.code.as_str());
    let mut extra = Vec::new();
    if let Some(b) = &e.bucket {
        extra.push(("BucketName", b.as_str()));
    }
    if let Some(k) = &e.key {
        extra.push(("Key", k.as_str()));
    }
    // COS's SDK reads no error without a Resource.
    let resource = match (&e.bucket, &e.key) {
        (Some(b), Some(k)) => format!("{b}/{k}"),
        (Some(b), None) => b.clone(),
        _ => "/".to_owned(),
    };
    if d == Dialect::Cos {
        extra.push(("Resource", resource.as_str()));
    }
    let xml = error_xml(&code, &e.message, rid, &extra);
    let mut r = Response::new(Body::from(xml));
    *r.status_mut() = e.code.status();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/xml"));
    for (k, v) in &e.headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            r.headers_mut().insert(*k, v);
        }
    }
    r
}

/// Accepts connections until `shutdown` resolves: at most `max_connections` at once (beyond
/// that a connection is closed at once), a request head within `header_timeout`, TCP_NODELAY
/// on (responses are small and latency-bound; without it a GET waits on delayed ACKs).
pub async fn serve(
    listener: tokio::net::TcpListener,
    endpoint: Endpoint,
    cfg: FrontConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(
        endpoint.inner.store.limits().max_connections,
    ));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "objectstore: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!("objectstore: connection limit reached; closing a new connection");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ep = endpoint.clone();
        let timeout = cfg.header_timeout;
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let ep = ep.clone();
                async move { Ok::<_, Infallible>(ep.handle(req, remote).await) }
            });
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(timeout)
                .keep_alive(true);
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = b.serve_connection(io, svc).await {
                tracing::debug!(error = %e, "objectstore: connection ended with an error");
            }
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects_by_signature() {
        let mut h = HeaderMap::new();
        assert_eq!(dialect_of(&h, ""), Dialect::S3);
        assert_eq!(dialect_of(&h, "OSSAccessKeyId=a&Expires=1"), Dialect::Oss);
        assert_eq!(dialect_of(&h, "q-sign-algorithm=sha1"), Dialect::Cos);
        h.insert("authorization", "OSS a:b".parse().unwrap());
        assert_eq!(dialect_of(&h, ""), Dialect::Oss);
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=x".parse().unwrap(),
        );
        assert_eq!(dialect_of(&h, ""), Dialect::S3);
    }

    #[test]
    fn virtual_hosts() {
        let d = vec!["localhost".to_string()];
        assert_eq!(host_bucket(&d, "b1.localhost:9001").as_deref(), Some("b1"));
        assert_eq!(host_bucket(&d, "localhost:9001"), None);
        assert_eq!(host_bucket(&d, "127.0.0.1:9001"), None);
        assert_eq!(
            host_bucket(&d, "pic-1250000000.cos.ap-guangzhou.myqcloud.com").as_deref(),
            Some("pic-1250000000")
        );
        assert_eq!(
            host_bucket(&d, "b.oss-cn-hangzhou.aliyuncs.com").as_deref(),
            Some("b")
        );
    }
}
