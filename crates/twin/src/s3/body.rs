//! Object bodies streamed between the connection and files: never held whole in memory.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt as _};
use md5::{Digest as _, Md5};
use s3s::dto::StreamingBlob;
use s3s::{S3Error, S3ErrorCode, S3Result};
use tokio::io::{AsyncRead, AsyncSeekExt as _, AsyncWriteExt as _, ReadBuf};

use super::access::{internal, s3_error};

/// How much of a body is read from its file per chunk sent.
const READ_CHUNK: usize = 64 * 1024;

/// A body received into a temporary file.
pub(super) struct Received {
    pub(super) path: PathBuf,
    pub(super) size: u64,
    pub(super) md5: [u8; 16],
}

/// Removes the temporary file unless the upload was adopted by the store.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes `body` to `path` as it arrives, computing its MD5 and size, and flushes it to disk.
/// A body that fails part way (a client gone, a chunk signature or payload hash that does not
/// verify) leaves no file.
pub(super) async fn receive(body: Option<StreamingBlob>, path: PathBuf) -> S3Result<Received> {
    let mut guard = TempGuard(Some(path.clone()));
    // 0600 like every file of the store (`private_fs`), whatever the umask.
    let mut file = tokio::fs::OpenOptions::from(private_fs::file_options())
        .open(&path)
        .await
        .map_err(|e| internal(&e))?;
    let mut md5 = Md5::new();
    let mut size: u64 = 0;
    if let Some(mut body) = body {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(upload_error)?;
            md5.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(|e| internal(&e))?;
        }
    }
    file.flush().await.map_err(|e| internal(&e))?;
    file.sync_all().await.map_err(|e| internal(&e))?;
    drop(file);
    guard.0 = None;
    Ok(Received {
        path,
        size,
        md5: md5.finalize().into(),
    })
}

/// Removes a received body the store did not take.
pub(super) fn discard(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// The error of a body that could not be read: `s3s`'s own (a payload hash or chunk signature
/// that does not match) when it is one, else `IncompleteBody`. (A body ended by the idle
/// timeout is answered `RequestTimeout` by the service, whatever this says.)
fn upload_error(e: Box<dyn std::error::Error + Send + Sync>) -> S3Error {
    match e.downcast::<S3Error>() {
        Ok(s3) => *s3,
        Err(other) => {
            tracing::debug!(error = %other, "reading an upload failed");
            s3_error(
                S3ErrorCode::IncompleteBody,
                "You did not provide the number of bytes specified by the Content-Length HTTP header.",
            )
        }
    }
}

/// `range` bytes of the file at `path`, as a body stream read in [`READ_CHUNK`] pieces.
pub(super) async fn send(path: &Path, range: std::ops::Range<u64>) -> std::io::Result<FileBody> {
    let mut file = tokio::fs::File::open(path).await?;
    if range.start > 0 {
        file.seek(std::io::SeekFrom::Start(range.start)).await?;
    }
    Ok(FileBody {
        file,
        remaining: range.end - range.start,
        buf: BytesMut::new(),
    })
}

/// A file read as a stream of chunks, ending after `remaining` bytes.
pub(super) struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    buf: BytesMut,
}

impl Stream for FileBody {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.remaining)
            .unwrap_or(READ_CHUNK)
            .min(READ_CHUNK);
        if this.buf.len() < want {
            this.buf.resize(want, 0);
        }
        let mut read = ReadBuf::new(&mut this.buf[..want]);
        match Pin::new(&mut this.file).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let n = read.filled().len();
                if n == 0 {
                    // The file is shorter than its metadata says: end the body with an error
                    // rather than a silently short object.
                    this.remaining = 0;
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "object body file is shorter than recorded",
                    ))));
                }
                this.remaining -= n as u64;
                let chunk = this.buf.split_to(n).freeze();
                Poll::Ready(Some(Ok(chunk)))
            }
        }
    }
}

/// Copies `range` of the file at `source` into a new file at `dest` (a temporary path),
/// computing its MD5, and flushes it to disk: a copy's body, read and written in
/// [`READ_CHUNK`] pieces, never whole. Blocking: run it off the async workers. On failure no
/// file is left at `dest`.
pub(super) fn copy_range(
    source: &Path,
    range: std::ops::Range<u64>,
    dest: PathBuf,
) -> std::io::Result<Received> {
    use std::io::{Read as _, Seek as _, Write as _};
    let mut guard = TempGuard(Some(dest.clone()));
    let mut from = std::fs::File::open(source)?;
    from.seek(std::io::SeekFrom::Start(range.start))?;
    let mut from = from.take(range.end - range.start);
    let mut to = private_fs::create_file(&dest)?;
    let mut md5 = Md5::new();
    let mut size: u64 = 0;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        size += n as u64;
    }
    if size != range.end - range.start {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "object body file is shorter than recorded",
        ));
    }
    to.sync_all()?;
    drop(to);
    guard.0 = None;
    Ok(Received {
        path: dest,
        size,
        md5: md5.finalize().into(),
    })
}
