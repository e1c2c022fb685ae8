//! Wiring of the CDN into `serve`: the control plane's `Cdn` (its events committed through the
//! dispatcher, like the object store's) and the edge listener on `--cdn-listen`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use fnbridge_cdn::{Cdn, CdnConfig};
use fnbridge_dispatch::Dispatcher;
use fnbridge_objectstore::ObjectStore;

use super::objectstore::DispatchSink;
use crate::cli::ServeArgs;

/// The CDN and its edge listener: the address and a sender that stops it; `None` when the
/// CDN is off (`--cdn-listen off`, or no object store).
pub async fn start(
    args: &ServeArgs,
    dispatcher: &Dispatcher,
    objects: Option<&ObjectStore>,
) -> anyhow::Result<Option<(Cdn, std::net::SocketAddr, tokio::sync::watch::Sender<bool>)>> {
    let listen = match &args.cdn_listen {
        Some(l) => l.clone(),
        None if args.listen.ends_with(":0") => "127.0.0.1:0".to_string(),
        None => "127.0.0.1:9080".to_string(),
    };
    let Some(objects) = objects else {
        return Ok(None);
    };
    if listen == "off" {
        return Ok(None);
    }
    let mut cfg = CdnConfig::new(fnbridge_cdn::events::Identity {
        region: args.region.clone(),
        account_id: args.account_id.clone(),
    });
    cfg.default_ttl = Duration::from_secs(args.cdn_default_ttl_s);
    cfg.cache_bytes = args.cdn_cache_mb.max(1) << 20;
    cfg.max_object = (cfg.cache_bytes / 8).clamp(1, 64 << 20);
    let cdn = Cdn::open(
        dispatcher.store().clone(),
        objects.clone(),
        Arc::new(DispatchSink(dispatcher.clone())),
        cfg,
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot open the CDN: {e}"))?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (--cdn-listen)"))?;
    let addr = listener.local_addr()?;
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let edge = cdn.clone();
    let max = args.max_connections.max(1);
    let header_timeout = Duration::from_secs(args.header_timeout_s.max(1));
    tokio::spawn(async move {
        fnbridge_cdn::edge::serve(listener, edge, max, header_timeout, async move {
            let _ = rx.wait_for(|v| *v).await;
        })
        .await;
    });
    Ok(Some((cdn, addr, tx)))
}
