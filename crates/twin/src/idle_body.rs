//! Streamed request bodies end with an error when the client pauses too long between bytes.
//!
//! Buffered services are bound by the request timeout, which covers reading their (small)
//! bodies. A streamed body (an S3 upload) may rightly take longer than any fixed deadline, so it
//! gets an idle timeout instead: each frame that arrives restarts the clock, and a pause longer
//! than [`TwinConfig::body_idle_timeout`](crate::TwinConfig::body_idle_timeout) ends the body
//! with [`BodyIdle`] and marks the request's [`BodyStall`], so the service can answer in its own
//! protocol (S3's `RequestTimeout`) whatever layer saw the error first.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// Whether a streamed request's body was ended for idling, and after how long.
#[derive(Debug, Clone)]
pub struct BodyStall {
    happened: Arc<AtomicBool>,
    limit: Duration,
}

impl BodyStall {
    /// A stall watch for bodies idle for more than `limit`; nothing has happened yet.
    pub fn new(limit: Duration) -> Self {
        BodyStall {
            happened: Arc::new(AtomicBool::new(false)),
            limit,
        }
    }

    /// True once the body was ended because the client sent nothing for [`limit`](Self::limit).
    pub fn happened(&self) -> bool {
        self.happened.load(Ordering::SeqCst)
    }

    /// The longest pause allowed between body bytes.
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

/// The error a streamed body ends with when the client paused past the idle timeout.
#[derive(Debug, thiserror::Error)]
#[error("no request body bytes arrived for {} s", limit.as_secs_f64())]
pub struct BodyIdle {
    limit: Duration,
}

/// `body` that fails with [`BodyIdle`] (and marks `stall`) after `stall.limit()` without a frame.
pub(crate) fn with_idle_timeout(body: Body, stall: &BodyStall) -> Body {
    Body::new(IdleTimeout {
        inner: body,
        sleep: Box::pin(tokio::time::sleep(stall.limit)),
        stall: stall.clone(),
        started: false,
        done: false,
    })
}

struct IdleTimeout {
    inner: Body,
    sleep: Pin<Box<Sleep>>,
    stall: BodyStall,
    /// Whether the body has been asked for a frame yet. The clock starts then, not when the
    /// request arrived: a client that sent `Expect: 100-continue` sends nothing until the
    /// service first reads (hyper answers `100 Continue` then).
    started: bool,
    /// Ended (by the client or the timeout): no timer runs after the end.
    done: bool,
}

impl HttpBody for IdleTimeout {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if !this.started {
            this.started = true;
            let limit = this.stall.limit;
            this.sleep.as_mut().reset(Instant::now() + limit);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let limit = this.stall.limit;
                this.sleep.as_mut().reset(Instant::now() + limit);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.done = true;
                    this.stall.happened.store(true, Ordering::SeqCst);
                    Poll::Ready(Some(Err(Box::new(BodyIdle {
                        limit: this.stall.limit,
                    }))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    /// A body whose frames arrive after the given pauses.
    fn paced(pauses: &'static [u64]) -> Body {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        tokio::spawn(async move {
            for ms in pauses {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                if tx
                    .send(Ok(Frame::data(Bytes::from_static(b"x"))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Body::new(http_body_util::StreamBody::new(tokio_stream_from(rx)))
    }

    fn tokio_stream_from<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures_util::Stream<Item = T> + Send {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    #[tokio::test]
    async fn steady_bodies_pass_and_stalls_end_them() {
        // Ten frames 40 ms apart: 400 ms in all, never 150 ms idle.
        let stall = BodyStall::new(Duration::from_millis(150));
        let body = with_idle_timeout(paced(&[40; 10]), &stall);
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len(), 10);
        assert!(!stall.happened());

        let stall = BodyStall::new(Duration::from_millis(150));
        let body = with_idle_timeout(paced(&[10, 10, 600]), &stall);
        let err = body.collect().await.unwrap_err();
        assert!(stall.happened());
        assert!(err.to_string().contains("no request body bytes"), "{err}");

        // The clock starts at the first read, not before: a client waiting for `100 Continue`
        // sends its first byte only after the service has begun to read.
        let stall = BodyStall::new(Duration::from_millis(150));
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let inner = Body::new(http_body_util::StreamBody::new(tokio_stream_from(rx)));
        let body = with_idle_timeout(inner, &stall);
        tokio::time::sleep(Duration::from_millis(300)).await;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"late")))).await;
        });
        assert_eq!(body.collect().await.unwrap().to_bytes().len(), 4);
        assert!(!stall.happened());
    }
}
