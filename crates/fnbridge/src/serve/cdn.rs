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
    objects: Option<(&ObjectStore, std::net::SocketAddr)>,
    data: &std::path::Path,
) -> anyhow::Result<Option<(Cdn, std::net::SocketAddr, tokio::sync::watch::Sender<bool>)>> {
    let listen = match &args.cdn_listen {
        Some(l) => l.clone(),
        None if args.listen.ends_with(":0") => "127.0.0.1:0".to_string(),
        None => "127.0.0.1:9080".to_string(),
    };
    let Some((objects, oss_addr)) = objects else {
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
    cfg.add_domain_per_hour = args.cdn_add_domain_per_hour;
    if args.cdn_disk_cache_mb > 0 {
        cfg.disk_cache = Some((data.join("cdn-cache"), args.cdn_disk_cache_mb << 20));
    }
    let cdn = Cdn::open(
        dispatcher.store().clone(),
        objects.clone(),
        Arc::new(DispatchSink(dispatcher.clone())),
        cfg,
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot open the CDN: {e}"))?;
    start_logs(args, dispatcher, oss_addr, data, &cdn).await?;
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

/// The access key presigned log URLs are signed with: one the server creates once (described
/// `cdn-log-signer`, so it shows in `fnbridge key list`; deleting it revokes every URL).
const SIGNER: &str = "cdn-log-signer";

async fn start_logs(
    args: &ServeArgs,
    dispatcher: &Dispatcher,
    oss_addr: std::net::SocketAddr,
    data: &std::path::Path,
    cdn: &Cdn,
) -> anyhow::Result<()> {
    let auth = dispatcher.auth();
    let keys = auth
        .list_keys()
        .await
        .map_err(|e| anyhow::anyhow!("cannot list access keys: {e}"))?;
    let (id, secret) = match keys.iter().find(|k| k.description == SIGNER) {
        Some(k) => {
            let secret = auth
                .secret_of(&k.access_key_id)
                .context("the CDN log signing key has no secret")?;
            (k.access_key_id.clone(), secret)
        }
        None => {
            let (k, secret) = auth
                .create_key(SIGNER)
                .await
                .map_err(|e| anyhow::anyhow!("cannot create the CDN log signing key: {e}"))?;
            (k.access_key_id, secret)
        }
    };
    let endpoint = args
        .cdn_log_endpoint
        .clone()
        .unwrap_or_else(|| format!("http://{oss_addr}"));
    cdn.start_logs(fnbridge_cdn::logs::LogConfig {
        dir: data.join("cdn-logs"),
        period_s: args.cdn_log_period_s.max(1) as i64,
        bucket: args.cdn_log_bucket.clone(),
        oss_endpoint: endpoint,
        access_key_id: id,
        access_key_secret: secret,
        url_validity: Duration::from_secs(args.cdn_log_url_validity_s.max(1)),
    })
    .context("cannot start the CDN log writer")?;
    Ok(())
}
