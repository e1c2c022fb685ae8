//! `EventSink`: where the object store commits a metadata change together with the events it
//! produces. The store never calls dispatch itself (sources append to the bus); the binary
//! hands it a sink that matches the events and stores them with their deliveries in the same
//! transaction as the change (`Dispatcher::commit_with_events`).

use std::any::Any;

use fnbridge_event::BusEvent;
use fnbridge_store::{Store, StoreError, Tx};
use futures::future::BoxFuture;

/// A metadata change: runs inside one store transaction and returns its value and its events.
pub type Change =
    Box<dyn FnOnce(&dyn Tx) -> Result<(Box<dyn Any + Send>, Vec<BusEvent>), StoreError> + Send>;

/// Why a change was not committed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server cannot take more work now (backlog full, shutting down): nothing was stored.
    #[error("{0}")]
    Unavailable(String),
}

/// Commits a change and its events in one durable transaction.
pub trait EventSink: Send + Sync + 'static {
    /// Resolves once the transaction is durable, with the change's value.
    fn commit(&self, change: Change) -> BoxFuture<'static, Result<Box<dyn Any + Send>, SinkError>>;
}

/// Runs `f` through `sink` and gives back its typed value.
pub async fn commit<T, F>(sink: &dyn EventSink, f: F) -> Result<T, SinkError>
where
    T: Send + 'static,
    F: FnOnce(&dyn Tx) -> Result<(T, Vec<BusEvent>), StoreError> + Send + 'static,
{
    let change: Change = Box::new(move |tx| {
        let (v, events) = f(tx)?;
        Ok((Box::new(v) as Box<dyn Any + Send>, events))
    });
    let v = sink.commit(change).await?;
    v.downcast::<T>()
        .map(|b| *b)
        .map_err(|_| SinkError::Unavailable("event sink returned a value of another type".into()))
}

/// A sink that stores the events in the event log with no deliveries: for the store's own
/// tests and for running the object store without dispatch.
pub struct LogOnlySink(pub Store);

impl EventSink for LogOnlySink {
    fn commit(&self, change: Change) -> BoxFuture<'static, Result<Box<dyn Any + Send>, SinkError>> {
        let store = self.0.clone();
        Box::pin(async move {
            Ok(store
                .write(move |tx| {
                    let (v, events) = change(tx)?;
                    let now = fnbridge_store::now_ms();
                    for e in events {
                        let body = serde_json::to_string(&e.body)?;
                        tx.append_event(&e.id, e.source.wire_name(), &e.name, now, &body)?;
                    }
                    Ok(v)
                })
                .await?)
        })
    }
}
