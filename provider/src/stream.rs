//! A small helper both the controller and the writer use (so neither imports the other).

use tokio::sync::mpsc;

/// An mpsc receiver as a Stream (tokio-stream's wrapper, without the extra dependency).
pub fn stream_of<T: Send + 'static>(
    mut rx: mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
