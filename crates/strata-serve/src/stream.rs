//! Streaming a cold file to the client while the store downloads it.
//!
//! The store stays the only code that verifies: the bytes passed on here are copies of what
//! [`strata_store::Fetcher::ensure`] writes into its pending entry, told through
//! [`Progress::received`]. What makes it safe to send them before the digest is checked:
//!
//! - the most recent chunk is always **held back**: the response cannot complete until
//!   `ensure` has returned `Ok` (verified and renamed into the store). The rest of the file
//!   (the held chunk, and anything not passed on) is then read from the verified entry;
//! - if `ensure` fails (wrong bytes, wrong size, upstream gone), the body ends with an
//!   error, so hyper aborts the connection: the client sees a truncated response (short of
//!   its `Content-Length`, or without the last chunk of a chunked body), never a complete
//!   wrong file;
//! - if the download went back to an earlier offset after bytes were passed on (the server
//!   ignored a resume request, or the next URL was tried), what the client got may not be
//!   what was verified: the response is aborted the same way;
//! - a client slower than the download does not make the server buffer the file: past
//!   [`QUEUE_CHUNKS`] chunks the tee stops and the rest comes from the verified entry.

use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use hyper::body::Frame;
use strata_lock::Artifact;
use strata_store::Progress;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};

use crate::lazy::{LazyTree, Opened};

/// Chunks queued between the download and a slow client before the tee stops.
pub const QUEUE_CHUNKS: usize = 64;

/// What the download reported so far.
#[derive(Default)]
struct TeeState {
    /// Where the next bytes should start.
    next: u64,
    /// The download went back to an earlier offset.
    rewound: bool,
    /// The queue filled up (or was closed): nothing more is passed on.
    stopped: bool,
}

/// A [`Progress`] that passes received bytes to the response body.
struct Tee {
    tx: mpsc::Sender<Bytes>,
    state: Arc<Mutex<TeeState>>,
}

impl Progress for Tee {
    fn received(&self, _artifact: &Artifact, offset: u64, bytes: &[u8]) {
        let mut st = self.state.lock().expect("not poisoned");
        if offset != st.next {
            st.rewound = true;
            st.stopped = true;
        }
        st.next = offset + bytes.len() as u64;
        if !st.stopped && self.tx.try_send(Bytes::copy_from_slice(bytes)).is_err() {
            st.stopped = true;
        }
    }
}

/// How a cold open began.
pub enum Cold {
    /// The download finished (or failed) before any byte arrived: answer as for a cached
    /// file (or with an error).
    Done(Result<Opened, String>),
    /// Bytes are arriving: stream them.
    Streaming(ColdBody),
}

/// The body of a response streamed during the download.
pub struct ColdBody {
    chunks: mpsc::Receiver<Bytes>,
    done: Option<oneshot::Receiver<Result<Opened, String>>>,
    state: Arc<Mutex<TeeState>>,
    held: Option<Bytes>,
    delivered: u64,
}

/// Starts making artifact `index` present; waits for the first bytes or the end.
pub async fn open_cold(lazy: Arc<LazyTree>, index: usize) -> Cold {
    let (tx, mut chunks) = mpsc::channel(QUEUE_CHUNKS);
    let (done_tx, mut done) = oneshot::channel();
    let state = Arc::new(Mutex::new(TeeState::default()));
    let tee = Tee {
        tx,
        state: state.clone(),
    };
    // The download belongs to the store, not to this request: it runs to the end even if
    // the client goes away, and later requests find the entry.
    tokio::spawn(async move {
        let result = lazy.open_with(index, &tee).await;
        drop(tee);
        let _ = done_tx.send(result.map_err(|e| e.to_string()));
    });
    tokio::select! {
        biased;
        result = &mut done => {
            Cold::Done(result.unwrap_or_else(|_| Err("the download task ended".into())))
        }
        first = chunks.recv() => match first {
            Some(first) => Cold::Streaming(ColdBody {
                chunks,
                done: Some(done),
                state,
                held: Some(first),
                delivered: 0,
            }),
            None => Cold::Done(
                done.await
                    .unwrap_or_else(|_| Err("the download task ended".into())),
            ),
        },
    }
}

/// Where a streamed body is.
enum Phase {
    /// Passing on the download's bytes.
    Chunks(ColdBody),
    /// Reading the rest from the verified entry.
    File(tokio_util::io::ReaderStream<tokio::io::Take<tokio::fs::File>>),
}

impl ColdBody {
    /// The body as a stream of frames; an `Err` item makes hyper abort the response.
    pub fn into_stream(
        self,
    ) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, io::Error>> + Send {
        futures_util::stream::unfold(Some(Phase::Chunks(self)), |phase| async move {
            match phase? {
                Phase::File(mut rest) => {
                    let item = rest.next().await?;
                    Some((item.map(Frame::data), Some(Phase::File(rest))))
                }
                Phase::Chunks(mut body) => {
                    while let Some(chunk) = body.chunks.recv().await {
                        if let Some(prev) = body.held.replace(chunk) {
                            body.delivered += prev.len() as u64;
                            return Some((Ok(Frame::data(prev)), Some(Phase::Chunks(body))));
                        }
                    }
                    match body.finish().await {
                        Ok(mut rest) => {
                            let item = rest.next().await?;
                            Some((item.map(Frame::data), Some(Phase::File(rest))))
                        }
                        Err(e) => Some((Err(e), None)),
                    }
                }
            }
        })
    }

    /// The download ended: its verdict decides whether the rest (the held bytes included)
    /// goes out, read from the verified entry from where the client is.
    async fn finish(
        mut self,
    ) -> io::Result<tokio_util::io::ReaderStream<tokio::io::Take<tokio::fs::File>>> {
        let done = self
            .done
            .take()
            .ok_or_else(|| io::Error::other("finished twice"))?;
        let result = done
            .await
            .unwrap_or_else(|_| Err("the download task ended".into()));
        let rewound = self.state.lock().expect("not poisoned").rewound;
        let opened = match result {
            Ok(_) if rewound && self.delivered > 0 => {
                tracing::warn!("aborting a streamed response: the download restarted");
                return Err(io::Error::other(
                    "the download restarted after bytes were sent",
                ));
            }
            Ok(opened) => opened,
            Err(e) => {
                tracing::warn!("aborting a streamed response: {e}");
                return Err(io::Error::other(e));
            }
        };
        let file = crate::http::open_at(&opened.path, self.delivered).await?;
        Ok(tokio_util::io::ReaderStream::with_capacity(
            file.take(opened.len.saturating_sub(self.delivered)),
            256 * 1024,
        ))
    }
}
