//! Captured, capped stdout/stderr for a guest run.
//!
//! A guest's output streams write into memory. Once a stream reaches its cap,
//! the next write traps the guest with [`StdioOverflow`], so a guest printing
//! 100 MB fails fast with a clear error instead of eating host memory; what
//! was captured up to the cap is kept and attached to the error report.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// The error a guest traps with when it writes past the capture cap.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("guest wrote more than {limit} bytes to {stream}")]
pub struct StdioOverflow {
    /// "stdout" or "stderr".
    pub stream: &'static str,
    /// The cap in bytes.
    pub limit: usize,
}

/// One captured output stream; clones share the same buffer.
#[derive(Clone)]
pub(crate) struct CappedPipe {
    buffer: Arc<Mutex<Vec<u8>>>,
    overflow: StdioOverflow,
}

impl CappedPipe {
    /// A pipe named `stream` ("stdout"/"stderr") that holds at most `limit` bytes.
    pub(crate) fn new(stream: &'static str, limit: usize) -> Self {
        CappedPipe {
            buffer: Arc::new(Mutex::new(Vec::new())),
            overflow: StdioOverflow { stream, limit },
        }
    }

    /// What the guest wrote, decoded lossily as UTF-8.
    pub(crate) fn contents(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A poisoned buffer still holds valid bytes; keep using it.
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn room(&self, buffer: &[u8]) -> usize {
        self.overflow.limit.saturating_sub(buffer.len())
    }

    fn trap(&self) -> StreamError {
        StreamError::Trap(wasmtime::Error::new(self.overflow))
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        let mut buffer = self.lock();
        let room = self.room(&buffer);
        if bytes.len() > room {
            buffer.extend_from_slice(&bytes[..room]);
            return Err(self.trap());
        }
        buffer.extend_from_slice(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        match self.room(&self.lock()) {
            0 => Err(self.trap()),
            room => Ok(room),
        }
    }
}

#[async_trait::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CappedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut buffer = self.lock();
        let room = self.room(&buffer);
        if room == 0 && !data.is_empty() {
            return Poll::Ready(Err(io::Error::other(self.overflow)));
        }
        let n = data.len().min(room);
        buffer.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_past_cap_keeps_prefix_and_traps_with_overflow() {
        let pipe = CappedPipe::new("stdout", 8);
        let mut stream = pipe.p2_stream();
        assert_eq!(stream.check_write().ok(), Some(8));
        stream.write(Bytes::from_static(b"hello")).expect("fits");
        let err = stream
            .write(Bytes::from_static(b" world"))
            .expect_err("over the cap");
        let StreamError::Trap(trap) = err else {
            panic!("expected a trap, got {err:?}")
        };
        let overflow = trap
            .downcast_ref::<StdioOverflow>()
            .expect("trap carries StdioOverflow");
        assert_eq!((overflow.stream, overflow.limit), ("stdout", 8));
        assert_eq!(pipe.contents(), "hello wo");
        assert!(matches!(stream.check_write(), Err(StreamError::Trap(_))));
    }
}
