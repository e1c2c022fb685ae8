//! The name server of each sandbox (`nameserver 127.0.0.1` in its `/etc/resolv.conf`): Alibaba
//! Cloud's public endpoint names of the services fnbridge serves resolve to loopback addresses
//! where the sandbox's proxies listen on port 80, so code written for FC reaches fnbridge's own
//! services with the endpoints it names on FC, unchanged (http only). Every other name is
//! forwarded to slirp4netns' resolver (`10.0.2.3`) where the instance has the outside network,
//! and refused where it has not.
//!
//! Which names (case-insensitive, any region, any sub-domain such as a bucket's virtual host):
//! - object store: a name ending in `.aliyuncs.com` whose label before it starts with `oss-`
//!   (`oss-cn-hangzhou.aliyuncs.com`, `oss-cn-hangzhou-internal.aliyuncs.com`,
//!   `{bucket}.oss-cn-hangzhou.aliyuncs.com`);
//! - API: `fc.aliyuncs.com` and its sub-domains (`{account}.cn-hangzhou.fc.aliyuncs.com`),
//!   `cdn.aliyuncs.com`, and a name of `aliyuncs.com` with an `eventbridge` label
//!   (`{account}.eventbridge.cn-hangzhou.aliyuncs.com`, `eventbridge.cn-hangzhou.aliyuncs.com`).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use simple_dns::rdata::{A, RData};
use simple_dns::{CLASS, Packet, PacketFlag, QTYPE, RCODE, ResourceRecord, TYPE};
use tokio::task::JoinHandle;

use super::net::NetNs;

/// Where the object store's public names point inside a sandbox.
pub(crate) const OSS_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 1, 2);
/// Where the API's public names (FC, CDN, EventBridge) point inside a sandbox.
pub(crate) const API_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 1, 1);
/// The stub's own address (the sandbox's `resolv.conf`).
pub(crate) const STUB: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 53));
/// slirp4netns' built-in resolver.
const UPSTREAM: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 3), 53));
/// Queries forwarded at once per sandbox; more are refused until one ends.
const MAX_FORWARDS: usize = 16;
/// How long a forwarded query may wait for its answer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
/// TTL of the answers for fnbridge's own names.
const TTL: u32 = 60;

/// Which of fnbridge's services a public name stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Public {
    Api,
    ObjectStore,
}

impl Public {
    pub(crate) fn addr(self) -> Ipv4Addr {
        match self {
            Public::Api => API_ADDR,
            Public::ObjectStore => OSS_ADDR,
        }
    }
}

/// The service an Alibaba Cloud endpoint name is served by in fnbridge, if any.
pub(crate) fn public_service(name: &str) -> Option<Public> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let rest = name.strip_suffix(".aliyuncs.com")?;
    let labels: Vec<&str> = rest.split('.').collect();
    let last = *labels.last()?;
    if last.starts_with("oss-") && last.len() > 4 {
        return Some(Public::ObjectStore);
    }
    if last == "fc" || rest == "cdn" || labels.contains(&"eventbridge") {
        return Some(Public::Api);
    }
    None
}

/// The stub of one sandbox; stops when dropped.
#[derive(Debug)]
pub(crate) struct DnsStub(JoinHandle<()>);

impl Drop for DnsStub {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl DnsStub {
    /// Answers on `127.0.0.1:53` inside `ns`: the public names of the services in `serves`,
    /// and, with `forward`, every other name through slirp4netns' resolver.
    pub(crate) fn start(ns: &Arc<NetNs>, serves: &[Public], forward: bool) -> io::Result<DnsStub> {
        let socket = Arc::new(ns.udp(STUB)?);
        let serves = serves.to_vec();
        let ns = Arc::clone(ns);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_FORWARDS));
        Ok(DnsStub(tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut forwards = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    r = socket.recv_from(&mut buf) => {
                        let Ok((n, from)) = r else { continue };
                        let query = &buf[..n];
                        match answer(query, &serves) {
                            Answer::Reply(bytes) => {
                                let _ = socket.send_to(&bytes, from).await;
                            }
                            Answer::Forward if forward => {
                                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                                    if let Some(b) = refuse(query, RCODE::ServerFailure) {
                                        let _ = socket.send_to(&b, from).await;
                                    }
                                    continue;
                                };
                                let query = query.to_vec();
                                let (socket, ns) = (Arc::clone(&socket), Arc::clone(&ns));
                                forwards.spawn(async move {
                                    let _permit = permit;
                                    if let Ok(reply) = relay(&ns, &query).await {
                                        let _ = socket.send_to(&reply, from).await;
                                    }
                                });
                            }
                            Answer::Forward => {
                                if let Some(b) = refuse(query, RCODE::Refused) {
                                    let _ = socket.send_to(&b, from).await;
                                }
                            }
                            Answer::Drop => {}
                        }
                    }
                    Some(_) = forwards.join_next(), if !forwards.is_empty() => {}
                }
            }
        })))
    }
}

enum Answer {
    Reply(Vec<u8>),
    Forward,
    /// Not a DNS query: nothing to answer.
    Drop,
}

/// The answer to one query: an A record for one of fnbridge's names (no record for other
/// types of it), or forward it.
fn answer(query: &[u8], serves: &[Public]) -> Answer {
    let Ok(q) = Packet::parse(query) else {
        return Answer::Drop;
    };
    if q.has_flags(PacketFlag::RESPONSE) {
        return Answer::Drop;
    }
    let [question] = q.questions.as_slice() else {
        return Answer::Forward;
    };
    let name = question.qname.to_string();
    let Some(service) = public_service(&name).filter(|s| serves.contains(s)) else {
        return Answer::Forward;
    };
    let mut reply = Packet::new_reply(q.id());
    reply.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
    if q.has_flags(PacketFlag::RECURSION_DESIRED) {
        reply.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
    }
    reply.questions.push(question.clone());
    if question.qtype == QTYPE::TYPE(TYPE::A) {
        reply.answers.push(ResourceRecord::new(
            question.qname.clone(),
            CLASS::IN,
            TTL,
            RData::A(A {
                address: u32::from(service.addr()),
            }),
        ));
    }
    match reply.build_bytes_vec() {
        Ok(b) => Answer::Reply(b),
        Err(_) => Answer::Drop,
    }
}

/// An empty answer with `rcode`.
fn refuse(query: &[u8], rcode: RCODE) -> Option<Vec<u8>> {
    let q = Packet::parse(query).ok()?;
    let mut reply = Packet::new_reply(q.id());
    reply.questions = q.questions.clone();
    *reply.rcode_mut() = rcode;
    reply.build_bytes_vec().ok()
}

/// Sends `query` to slirp4netns' resolver from inside the namespace, returns its answer.
async fn relay(ns: &NetNs, query: &[u8]) -> io::Result<Vec<u8>> {
    let socket = ns.udp(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))?;
    socket.connect(UPSTREAM).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(FORWARD_TIMEOUT, socket.recv(&mut buf))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the resolver did not answer"))??;
    buf.truncate(n);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alibaba_endpoint_names_map_to_their_service() {
        for (name, want) in [
            ("oss-cn-hangzhou.aliyuncs.com", Some(Public::ObjectStore)),
            (
                "OSS-cn-hangzhou-internal.aliyuncs.com.",
                Some(Public::ObjectStore),
            ),
            (
                "my-bucket.oss-ap-southeast-1.aliyuncs.com",
                Some(Public::ObjectStore),
            ),
            ("1234.cn-hangzhou.fc.aliyuncs.com", Some(Public::Api)),
            (
                "1234.cn-hangzhou-internal.fc.aliyuncs.com",
                Some(Public::Api),
            ),
            ("cdn.aliyuncs.com", Some(Public::Api)),
            (
                "1234.eventbridge.cn-hangzhou.aliyuncs.com",
                Some(Public::Api),
            ),
            ("eventbridge.cn-hangzhou.aliyuncs.com", Some(Public::Api)),
            ("ecs.aliyuncs.com", None),
            ("oss-.aliyuncs.com", None),
            ("oss-cn-hangzhou.aliyuncs.com.evil.example", None),
            ("pypi.org", None),
            ("sts.aliyuncs.com", None),
        ] {
            assert_eq!(public_service(name), want, "{name}");
        }
    }

    fn query(name: &str, qtype: TYPE) -> Vec<u8> {
        let mut p = Packet::new_query(7);
        p.set_flags(PacketFlag::RECURSION_DESIRED);
        p.questions.push(simple_dns::Question::new(
            simple_dns::Name::new_unchecked(name),
            QTYPE::TYPE(qtype),
            simple_dns::QCLASS::CLASS(CLASS::IN),
            false,
        ));
        p.build_bytes_vec().unwrap()
    }

    #[test]
    fn own_names_are_answered_others_forwarded() {
        let all = [Public::Api, Public::ObjectStore];
        let Answer::Reply(r) = answer(&query("b.oss-cn-hangzhou.aliyuncs.com", TYPE::A), &all)
        else {
            panic!("not answered")
        };
        let p = Packet::parse(&r).unwrap();
        assert_eq!(p.id(), 7);
        assert_eq!(p.rcode(), RCODE::NoError);
        assert!(matches!(
            &p.answers[0].rdata,
            RData::A(a) if Ipv4Addr::from(a.address) == OSS_ADDR
        ));
        let Answer::Reply(r) = answer(&query("cdn.aliyuncs.com", TYPE::AAAA), &all) else {
            panic!("not answered")
        };
        let p = Packet::parse(&r).unwrap();
        assert!(p.answers.is_empty(), "no IPv6 address for fnbridge's names");
        assert!(matches!(
            answer(&query("pypi.org", TYPE::A), &all),
            Answer::Forward
        ));
        // A service the server does not run (object store off) is not claimed.
        assert!(matches!(
            answer(
                &query("oss-cn-hangzhou.aliyuncs.com", TYPE::A),
                &[Public::Api]
            ),
            Answer::Forward
        ));
        assert!(matches!(answer(b"\x00garbage", &all), Answer::Drop));
        let refused = refuse(&query("pypi.org", TYPE::A), RCODE::Refused).unwrap();
        assert_eq!(Packet::parse(&refused).unwrap().rcode(), RCODE::Refused);
    }
}
