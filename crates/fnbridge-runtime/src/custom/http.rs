//! The platform's side of the custom-runtime HTTP protocol: one HTTP/1.1 request to the
//! instance's loopback port, with a bounded response body.
//!
//! Every request gets its own connection. Loopback connects cost microseconds, many servers
//! (Python's `http.server` among them) close after each response anyway, and a fresh
//! connection means a failure is always about this request: there is no pooled connection the
//! server may have closed just as it was reused, which would look exactly like a crash.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::header::{HOST, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::sandbox::NetNs;

/// A whole response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("cannot connect to the server: {0}")]
    Connect(std::io::Error),
    #[error("{0}")]
    Exchange(#[from] hyper::Error),
    #[error("the response body is larger than {0} bytes")]
    TooLarge(usize),
}

/// The instance's address.
pub(crate) fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Where an instance listens: a loopback port, in its sandbox's network namespace or (without a
/// sandbox) the server's.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) port: u16,
    pub(crate) net: Option<Arc<NetNs>>,
}

/// Connects, or fails; a connection to ourselves does not count. Connecting to a loopback
/// port nobody listens on can pick that very port as the local one (TCP simultaneous open),
/// which would look like a server that accepts and never answers.
pub(crate) async fn connect(target: &Target) -> std::io::Result<TcpStream> {
    let stream = match &target.net {
        Some(net) => net.connect(target.port).await?,
        None => TcpStream::connect(addr(target.port)).await?,
    };
    if stream.local_addr()? == stream.peer_addr()? {
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connected to itself",
        ));
    }
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Sends `method path` with `headers` and `body`; reads the response, refusing a body over
/// `max_body` bytes. Not bounded in time: the caller wraps it in its timeout.
pub(crate) async fn request(
    target: &Target,
    method: Method,
    path: &str,
    mut headers: HeaderMap,
    body: Bytes,
    max_body: usize,
) -> Result<Reply, HttpError> {
    let stream = connect(target).await.map_err(HttpError::Connect)?;
    let port = target.port;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection is driven by its own task; aborted (closing the socket) when we are done
    // or dropped, e.g. by a timeout.
    let _conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    // The low-level client sends only what it is given, and HTTP/1.1 servers (Go's among them)
    // refuse requests without Host.
    if let Ok(host) = HeaderValue::from_str(&format!("127.0.0.1:{port}")) {
        headers.insert(HOST, host);
    }
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = method;
    *req.uri_mut() = path
        .parse()
        .unwrap_or_else(|_| hyper::Uri::from_static("/"));
    *req.headers_mut() = headers;
    let response = sender.send_request(req).await?;
    let (parts, mut incoming) = response.into_parts();
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return Err(HttpError::TooLarge(max_body));
    }
    // Most bodies arrive in one frame, kept as it is; only further frames are copied.
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut len = 0usize;
    while let Some(frame) = incoming.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        len += data.len();
        if len > max_body {
            return Err(HttpError::TooLarge(max_body));
        }
        match (&mut first, &mut joined) {
            (None, None) => first = Some(data),
            (Some(_), None) => {
                let head = first.take().unwrap_or_default();
                let mut buf = BytesMut::with_capacity(len);
                buf.extend_from_slice(&head);
                buf.extend_from_slice(&data);
                joined = Some(buf);
            }
            (_, Some(buf)) => buf.extend_from_slice(&data),
        }
    }
    let body = match joined {
        Some(buf) => buf.freeze(),
        None => first.unwrap_or_default(),
    };
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
