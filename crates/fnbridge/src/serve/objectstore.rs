//! Wiring of the object store into `serve`: the dispatcher as its `EventSink`, the keys it
//! accepts, and its listener.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use fnbridge_dispatch::{DispatchError, Dispatcher};
use fnbridge_objectstore::{
    Change, EventSink, FrontConfig, Identity, Limits, ObjectStore, Secret, SecretLookup, SinkError,
};
use futures::future::BoxFuture;

use crate::cli::ServeArgs;

/// Commits object changes through `Dispatcher::commit_with_events`: the change, its events and
/// their deliveries in one transaction.
pub(crate) struct DispatchSink(pub(crate) Dispatcher);

impl EventSink for DispatchSink {
    fn commit(&self, change: Change) -> BoxFuture<'static, Result<Box<dyn Any + Send>, SinkError>> {
        let d = self.0.clone();
        Box::pin(async move {
            d.commit_with_events(change).await.map_err(|e| match e {
                DispatchError::Store(e) => SinkError::Store(e),
                other => SinkError::Unavailable(other.to_string()),
            })
        })
    }
}

/// The keys the object store accepts: the account's access keys (`fnbridge key create`) and the
/// STS credentials functions with a role get in `context.credentials`, the latter only for what
/// their role's policy allows.
struct Keys(fnbridge_auth::Auth);

impl SecretLookup for Keys {
    fn secret(&self, access_key_id: &str, security_token: Option<&str>) -> Option<Secret> {
        self.0.secret_for(access_key_id, security_token).map(Secret)
    }

    fn secret_of(&self, access_key_id: &str) -> Option<Secret> {
        self.0.secret_of(access_key_id).map(Secret)
    }

    fn authorize(
        &self,
        access_key_id: &str,
        security_token: Option<&str>,
        action: &str,
        resource: &str,
    ) -> Result<(), String> {
        self.0
            .authorize_key(access_key_id, security_token, action, resource)
            .map_err(|e| e.to_string())
    }
}

/// Binds the object store's listener (`None` with `--oss-listen off`): before the function
/// runtime starts, which tells instances where it is.
pub async fn bind(args: &ServeArgs) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let listen = match &args.oss_listen {
        Some(l) => l.clone(),
        None if args.listen.ends_with(":0") => "127.0.0.1:0".to_string(),
        None => "127.0.0.1:9001".to_string(),
    };
    if listen == "off" {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (--oss-listen)"))?;
    Ok(Some(listener))
}

/// Opens the object store and serves it on `listener`; returns its address and a sender that
/// stops it.
pub async fn start(
    args: &ServeArgs,
    data: &std::path::Path,
    dispatcher: &Dispatcher,
    listener: Option<tokio::net::TcpListener>,
) -> anyhow::Result<
    Option<(
        std::net::SocketAddr,
        tokio::sync::watch::Sender<bool>,
        ObjectStore,
    )>,
> {
    let Some(listener) = listener else {
        return Ok(None);
    };
    let keys = Arc::new(Keys(dispatcher.auth().clone()));
    let store = ObjectStore::open(
        dispatcher.store().clone(),
        &data.join("objects"),
        Arc::new(DispatchSink(dispatcher.clone())),
        Identity {
            region: args.region.clone(),
            account_id: args.account_id.clone(),
            cos_region: args.cos_region.clone(),
        },
        Limits {
            max_connections: args.max_connections.max(1),
            ..Limits::default()
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot open the object store: {e}"))?;
    let cfg = FrontConfig {
        domains: args.oss_domain.clone(),
        header_timeout: Duration::from_secs(args.header_timeout_s.max(1)),
    };
    let endpoint = fnbridge_objectstore::Endpoint::new(store.clone(), keys, &cfg);
    let addr = listener.local_addr()?;
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        fnbridge_objectstore::serve(listener, endpoint, cfg, async move {
            let _ = rx.wait_for(|v| *v).await;
        })
        .await;
    });
    Ok(Some((addr, tx, store)))
}
