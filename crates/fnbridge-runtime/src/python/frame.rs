//! The control-socket wire format shared with `bootstrap.py`: length-prefixed frames, a small
//! JSON header and the raw payload, so an event is never re-encoded on its way to the handler.
//!
//! request  = u32 header_len | u32 payload_len | header JSON | payload   (big endian)
//! response = u32 status     | u32 body_len    | body

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::spec::{Credentials, Invocation};

/// Largest result a handler may return (runtime.md §8); the bootstrap turns a larger one into
/// an error, so a bigger frame means the worker is broken.
pub(crate) const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// Error JSON around an oversized result needs some room on top.
const MAX_FRAME_BODY: usize = MAX_RESPONSE_BYTES + 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    Invoke,
    Initialize,
    PreStop,
}

#[derive(Serialize)]
struct Header<'a> {
    t: &'static str,
    id: &'a str,
    ak: &'a str,
    sk: &'a str,
    st: &'a str,
    q: &'a str,
    v: &'a str,
}

/// The frame head (lengths and JSON header) with room for `reserve` more bytes, so a small
/// payload can be appended and the whole request sent with one write.
pub(crate) fn request_head(
    kind: Request,
    inv: &Invocation,
    with_credentials: bool,
    payload_len: u32,
    reserve: usize,
) -> Vec<u8> {
    let none = Credentials::default();
    let c = if with_credentials {
        &inv.credentials
    } else {
        &none
    };
    let header = Header {
        t: match kind {
            Request::Invoke => "i",
            Request::Initialize => "n",
            Request::PreStop => "s",
        },
        id: &inv.request_id,
        ak: &c.access_key_id,
        sk: &c.access_key_secret,
        st: &c.security_token,
        q: &inv.qualifier,
        v: &inv.version_id,
    };
    let mut frame = Vec::with_capacity(8 + 256 + reserve);
    frame.extend_from_slice(&[0; 8]);
    serde_json::to_writer(&mut frame, &header).expect("serializing strings cannot fail");
    let header_len = (frame.len() - 8) as u32;
    frame[..4].copy_from_slice(&header_len.to_be_bytes());
    frame[4..8].copy_from_slice(&payload_len.to_be_bytes());
    frame
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    /// The handler (or initializer) raised; the body is the error JSON.
    Error,
    /// It raised MemoryError; the body is the error JSON and the instance must go.
    OutOfMemory,
}

#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: Status,
    pub(crate) body: Bytes,
}

/// Reads one response, buffering in `buf` (reused across calls). End of stream before a whole
/// frame is `UnexpectedEof`; a malformed frame is `InvalidData`.
pub(crate) async fn read_reply<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
) -> io::Result<Reply> {
    fill(r, buf, 8).await?;
    let status = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes"));
    let len = u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes")) as usize;
    let status = match status {
        0 => Status::Ok,
        1 => Status::Error,
        2 => Status::OutOfMemory,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown status {other}"),
            ));
        }
    };
    if len > MAX_FRAME_BODY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("response of {len} bytes"),
        ));
    }
    fill(r, buf, 8 + len).await?;
    buf.advance(8);
    let body = buf.split_to(len).freeze();
    Ok(Reply { status, body })
}

async fn fill<R: AsyncRead + Unpin>(r: &mut R, buf: &mut BytesMut, want: usize) -> io::Result<()> {
    if buf.len() < want {
        buf.reserve(want - buf.len());
    }
    while buf.len() < want {
        if r.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Credentials;

    #[test]
    fn request_head_has_lengths_and_json() {
        let inv = Invocation {
            request_id: "r\"1".to_owned(),
            payload: Bytes::from_static(b"{}"),
            qualifier: "LATEST".to_owned(),
            version_id: String::new(),
            credentials: Credentials::default(),
        };
        let head = request_head(Request::Invoke, &inv, true, 2, 2);
        let header_len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
        assert_eq!(u32::from_be_bytes(head[4..8].try_into().unwrap()), 2);
        assert_eq!(head.len(), 8 + header_len);
        let json: serde_json::Value = serde_json::from_slice(&head[8..]).unwrap();
        assert_eq!(json["id"], "r\"1");
        assert_eq!(json["t"], "i");
    }

    #[tokio::test]
    async fn reads_replies_back_to_back() {
        let mut wire = Vec::new();
        for (status, body) in [(0u32, &b"ok"[..]), (1, b"{\"errorType\":\"E\"}"), (2, b"")] {
            wire.extend_from_slice(&status.to_be_bytes());
            wire.extend_from_slice(&(body.len() as u32).to_be_bytes());
            wire.extend_from_slice(body);
        }
        let mut r = &wire[..];
        let mut buf = BytesMut::new();
        let a = read_reply(&mut r, &mut buf).await.unwrap();
        assert_eq!((a.status, &a.body[..]), (Status::Ok, &b"ok"[..]));
        let b = read_reply(&mut r, &mut buf).await.unwrap();
        assert_eq!(b.status, Status::Error);
        let c = read_reply(&mut r, &mut buf).await.unwrap();
        assert_eq!((c.status, c.body.len()), (Status::OutOfMemory, 0));
        let eof = read_reply(&mut r, &mut buf).await.unwrap_err();
        assert_eq!(eof.kind(), io::ErrorKind::UnexpectedEof);
    }
}
