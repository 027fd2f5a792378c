//! Bounds on what callers can make the server hold: calls in flight,
//! request bodies being read, connections. Overload is refused at once or
//! held back by HTTP/2 flow control, never queued without bound inside the
//! server.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Sleep,
};
use tokio_stream::{Stream, StreamExt};
use tonic::{
    Status,
    transport::server::{Connected, TcpConnectInfo, TcpIncoming},
};
use tower_layer::Layer;
use tower_service::Service;

/// Bounds on what callers can make the server hold. Overload is refused
/// at once (RESOURCE_EXHAUSTED, a refused stream or a closed connection),
/// never queued without bound inside the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// RunFunction calls (both protocol versions) in flight across all
    /// connections. A call beyond it is answered RESOURCE_EXHAUSTED before
    /// its request is read. Health and reflection do not count and are
    /// never refused by it.
    pub max_concurrent_calls: usize,
    /// Admitted RunFunction calls whose request bodies are read at once. A
    /// call waits for one of these before its body is read and gives it back
    /// once the body has ended, so bodies in memory at once are bounded by
    /// this, not by `max_concurrent_calls`; the rest of a waiting call's body
    /// stays with the client, held back by HTTP/2 flow control
    /// ([`ServerLimits::STREAM_WINDOW`] bytes at most reach the server).
    pub max_concurrent_reads: usize,
    /// How long a call may hold a read slot. A client that stops sending
    /// halfway through its body gives the slot up after this, so a few
    /// stalled clients cannot hold back everyone else's calls; its call goes
    /// on reading without one.
    pub read_slot_hold: Duration,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: streams a client may have
    /// open on one connection. gRPC clients hold further calls until a
    /// stream frees, so a single client (Crossplane keeps one connection per
    /// function) is slowed down rather than refused when this is no larger
    /// than `max_concurrent_calls`.
    pub max_streams_per_connection: u32,
    /// Open connections. A connection beyond it is closed as soon as it is
    /// accepted.
    pub max_connections: usize,
    /// How often to ping an idle HTTP/2 connection; `None` never pings.
    pub http2_keepalive_interval: Option<Duration>,
    /// How long to wait for a ping's acknowledgement before closing the
    /// connection.
    pub http2_keepalive_timeout: Duration,
    /// Idle time before TCP keepalive probes; `None` sends none.
    pub tcp_keepalive: Option<Duration>,
}

impl ServerLimits {
    pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 64;
    pub const DEFAULT_MAX_CONCURRENT_READS: usize = 4;
    pub const DEFAULT_READ_SLOT_HOLD: Duration = Duration::from_secs(1);
    pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: u32 = 64;
    pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
    pub const DEFAULT_HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
    pub const DEFAULT_HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
    pub const DEFAULT_TCP_KEEPALIVE: Duration = Duration::from_secs(60);

    /// The HTTP/2 receive window of each stream: how much of a request's
    /// body a client may send before the server has read it. The gRPC
    /// default (grpc-go's, and the protocol's initial window).
    pub const STREAM_WINDOW: u32 = 65_535;

    /// The HTTP/2 receive window of a connection: room for every stream's
    /// window and one more. Streams waiting for a read slot can fill at most
    /// their own windows, so the streams being read always have room on the
    /// connection and waiting never deadlocks reading.
    pub fn connection_window(&self) -> u32 {
        let streams = u64::from(self.max_streams_per_connection) + 1;
        // HTTP/2 caps a window at 2^31 - 1.
        u32::try_from(streams * u64::from(Self::STREAM_WINDOW))
            .map_or(MAX_WINDOW, |window| window.min(MAX_WINDOW))
    }
}

const MAX_WINDOW: u32 = (1 << 31) - 1;

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_concurrent_calls: Self::DEFAULT_MAX_CONCURRENT_CALLS,
            max_concurrent_reads: Self::DEFAULT_MAX_CONCURRENT_READS,
            read_slot_hold: Self::DEFAULT_READ_SLOT_HOLD,
            max_streams_per_connection: Self::DEFAULT_MAX_STREAMS_PER_CONNECTION,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            http2_keepalive_interval: Some(Self::DEFAULT_HTTP2_KEEPALIVE_INTERVAL),
            http2_keepalive_timeout: Self::DEFAULT_HTTP2_KEEPALIVE_TIMEOUT,
            tcp_keepalive: Some(Self::DEFAULT_TCP_KEEPALIVE),
        }
    }
}

/// Admits at most `max_concurrent_calls` calls to `services` at a time,
/// across all connections, and answers any call beyond that
/// RESOURCE_EXHAUSTED at once, before its request body is read: shedding
/// load instead of queueing it. An admitted call then waits for one of
/// `max_concurrent_reads` read slots before its body is read. Calls to other
/// services (health, reflection) pass untouched, so probes answer however
/// busy RunFunction is.
#[derive(Clone)]
pub(super) struct CallLimitLayer {
    calls: Arc<Semaphore>,
    limit: usize,
    reads: Arc<Semaphore>,
    read_slot_hold: Duration,
    services: Arc<[&'static str]>,
}

impl CallLimitLayer {
    pub(super) fn new(limits: &ServerLimits, services: &[&'static str]) -> Self {
        Self {
            calls: Arc::new(Semaphore::new(limits.max_concurrent_calls)),
            limit: limits.max_concurrent_calls,
            reads: Arc::new(Semaphore::new(limits.max_concurrent_reads)),
            read_slot_hold: limits.read_slot_hold,
            services: services.into(),
        }
    }

    fn limits(&self, path: &str) -> bool {
        path.strip_prefix('/')
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(service, _)| self.services.contains(&service))
    }
}

impl<S> Layer<S> for CallLimitLayer {
    type Service = CallLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallLimit {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct CallLimit<S> {
    inner: S,
    layer: CallLimitLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for CallLimit<S>
where
    S: Service<http::Request<SlottedBody<ReqBody>>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        if !self.layer.limits(request.uri().path()) {
            let hold = self.layer.read_slot_hold;
            return Box::pin(
                self.inner
                    .call(request.map(|body| SlottedBody::new(body, None, hold))),
            );
        }
        let Ok(call_slot) = self.layer.calls.clone().try_acquire_owned() else {
            tracing::debug!(
                limit = self.layer.limit,
                "refusing a RunFunction call: all slots busy"
            );
            let refusal = Status::resource_exhausted(format!(
                "the function is already running its maximum of {} RunFunction calls; \
                 retry later",
                self.layer.limit
            ));
            return Box::pin(std::future::ready(Ok(refusal.into_http())));
        };
        // The service was made ready for this call; the clone left behind
        // serves the next one (tower's usual take-the-ready-one swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let reads = self.layer.reads.clone();
        let hold = self.layer.read_slot_hold;
        Box::pin(async move {
            // Waiting here reads nothing: the body stays with the client
            // beyond the stream's flow-control window.
            // The semaphore is never closed; were it, the call would be
            // read without a slot rather than refused.
            let read_slot = reads.acquire_owned().await.ok();
            let response = inner
                .call(request.map(|body| SlottedBody::new(body, read_slot, hold)))
                .await;
            // A unary response is complete once its future is: the handler
            // has run and the body holds its answer.
            drop(call_slot);
            response
        })
    }
}

pin_project! {
    /// A request body holding a read slot until it ends (or fails), or until
    /// it has held the slot for `hold` while its client sent too slowly.
    pub(super) struct SlottedBody<B> {
        #[pin]
        inner: B,
        slot: Option<OwnedSemaphorePermit>,
        hold: Option<Pin<Box<Sleep>>>,
    }
}

impl<B> SlottedBody<B> {
    fn new(inner: B, slot: Option<OwnedSemaphorePermit>, hold: Duration) -> Self {
        let hold = slot.as_ref().map(|_| Box::pin(tokio::time::sleep(hold)));
        Self { inner, slot, hold }
    }

    #[cfg(test)]
    fn holds_slot(&self) -> bool {
        self.slot.is_some()
    }
}

impl<B: Body> Body for SlottedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        let done = match &polled {
            Poll::Ready(None | Some(Err(_))) => true,
            Poll::Ready(Some(Ok(frame))) => frame.is_trailers(),
            // Still waiting for the client: give the slot up once it has
            // been held long enough (the timer wakes this task then).
            Poll::Pending => this
                .hold
                .as_mut()
                .is_some_and(|hold| hold.as_mut().poll(cx).is_ready()),
        };
        if done {
            *this.slot = None;
            *this.hold = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Hands on accepted connections while fewer than `max` are open; a
/// connection beyond that is closed at once (its client sees it drop and
/// may retry) rather than left waiting in the listen backlog.
pub(super) fn limit_connections(
    incoming: TcpIncoming,
    max: usize,
) -> impl Stream<Item = io::Result<LimitedStream>> {
    let slots = Arc::new(Semaphore::new(max));
    // One warning per burst of refusals, not one per connection.
    let last_warning: Mutex<Option<Instant>> = Mutex::new(None);
    incoming.filter_map(move |accepted| match accepted {
        Err(e) => Some(Err(e)),
        Ok(stream) => match slots.clone().try_acquire_owned() {
            Ok(slot) => Some(Ok(LimitedStream {
                stream,
                _slot: slot,
            })),
            Err(_) => {
                let mut last = last_warning.lock().unwrap_or_else(|e| e.into_inner());
                if last.is_none_or(|at| at.elapsed() > CONNECTION_WARNING_INTERVAL) {
                    *last = Some(Instant::now());
                    tracing::warn!(
                        max_connections = max,
                        peer = ?stream.peer_addr().ok(),
                        "closing new connections: the maximum are open"
                    );
                }
                None
            }
        },
    })
}

const CONNECTION_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// An accepted connection holding one of the connection slots until it is
/// dropped.
pub(super) struct LimitedStream {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl Connected for LimitedStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use futures::channel::mpsc;
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    type Sent = Result<Frame<Bytes>, io::Error>;

    /// A body fed by the test, holding a fresh read slot, and the semaphore
    /// the slot came from.
    fn slotted(
        hold: Duration,
    ) -> (
        mpsc::UnboundedSender<Sent>,
        SlottedBody<StreamBody<mpsc::UnboundedReceiver<Sent>>>,
        Arc<Semaphore>,
    ) {
        let (send, receive) = mpsc::unbounded();
        let slots = Arc::new(Semaphore::new(1));
        let slot = slots.clone().try_acquire_owned().expect("a free slot");
        (
            send,
            SlottedBody::new(StreamBody::new(receive), Some(slot), hold),
            slots,
        )
    }

    fn data(bytes: &'static [u8]) -> Sent {
        Ok(Frame::data(Bytes::from_static(bytes)))
    }

    /// How a body ends decides when its slot is given back: at its end, at
    /// its trailers or at an error, never while data is still coming.
    #[tokio::test]
    async fn a_read_slot_is_given_back_when_the_body_ends() {
        let trailers = || Ok(Frame::trailers(http::HeaderMap::new()));
        let failure = || Err(io::Error::other("reset"));
        // (what, frames sent, whether the client then hangs up, given back)
        let cases: [(&str, Vec<Sent>, bool, bool); 4] = [
            (
                "data still coming",
                vec![data(b"a"), data(b"b")],
                false,
                false,
            ),
            ("trailers", vec![data(b"a"), trailers()], false, true),
            ("an error", vec![data(b"a"), failure()], false, true),
            ("the end of the body", vec![data(b"a")], true, true),
        ];
        for (what, frames, hang_up, given_back) in cases {
            let (send, mut body, slots) = slotted(Duration::from_secs(3600));
            let count = frames.len();
            for frame in frames {
                send.unbounded_send(frame).expect("send");
            }
            for _ in 0..count {
                assert!(body.frame().await.is_some(), "{what}: a frame");
            }
            if hang_up {
                drop(send);
                assert!(body.frame().await.is_none(), "{what}: the end");
            } else {
                // Nothing more is sent, and the sender stays open.
                let next = futures::poll!(body.frame());
                assert!(next.is_pending(), "{what}: waiting for more");
                drop(send);
            }
            assert_eq!(!body.holds_slot(), given_back, "{what}");
            assert_eq!(slots.available_permits(), usize::from(given_back), "{what}");
        }
    }

    /// A client that sends part of its body and stops gives the slot up once
    /// it has held it for `hold`, and not before.
    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_gives_its_slot_up_after_the_hold() {
        let (send, mut body, slots) = slotted(Duration::from_secs(1));
        send.unbounded_send(data(b"a")).expect("send");
        let _ = body.frame().await;
        let next = tokio::time::timeout(Duration::from_millis(999), body.frame()).await;
        assert!(next.is_err(), "nothing more was sent");
        assert!(body.holds_slot(), "held before the hold is up");
        let next = tokio::time::timeout(Duration::from_millis(2), body.frame()).await;
        assert!(next.is_err(), "still nothing sent");
        assert!(!body.holds_slot(), "given up once the hold is up");
        assert_eq!(slots.available_permits(), 1);
        // The call goes on reading without it.
        send.unbounded_send(data(b"b")).expect("send");
        drop(send);
        assert!(body.frame().await.is_some());
        assert!(body.frame().await.is_none());
    }

    #[test]
    fn a_body_without_a_slot_holds_none() {
        let (_send, receive) = mpsc::unbounded::<Sent>();
        let body = SlottedBody::new(StreamBody::new(receive), None, Duration::ZERO);
        assert!(!body.holds_slot());
    }

    /// Every stream's window fits in the connection's with one to spare, up
    /// to HTTP/2's largest window.
    #[test]
    fn the_connection_window_has_room_for_every_stream() {
        for (streams, window) in [
            (1, 2 * 65_535),
            (64, 65 * 65_535),
            (32_767, 32_768 * 65_535),
            (1_000_000, MAX_WINDOW),
            (u32::MAX, MAX_WINDOW),
        ] {
            let limits = ServerLimits {
                max_streams_per_connection: streams,
                ..ServerLimits::default()
            };
            assert_eq!(limits.connection_window(), window, "{streams} streams");
        }
    }
}
