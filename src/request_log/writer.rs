//! The request log's writer thread: appends the batches it receives to a temporary
//! file, and answers flush and truncate requests.

use std::fs::File;
use std::io::{Seek, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tempfile::NamedTempFile;

use super::RequestLogError;

/// What the writer thread is asked to do.
pub(crate) enum Message {
    /// Append these encoded records (bytes, record count).
    Batch(Vec<u8>, u64),
    /// Flush the file, then answer.
    Sync(SyncSender<()>),
    /// Empty the file, then answer.
    Truncate(SyncSender<()>),
}

#[derive(Default)]
struct Counters {
    written: AtomicU64,
    lost: AtomicU64,
}

/// The writer thread and its file.
pub(crate) struct Writer {
    file: NamedTempFile,
    counters: Arc<Counters>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Creates the temporary file and starts the thread; `queue` batches may wait.
    pub(crate) fn start(queue: usize) -> Result<(SyncSender<Message>, Self), RequestLogError> {
        let file = tempfile::Builder::new()
            .prefix("loaddensity-requests-")
            .tempfile()?;
        let output = file.as_file().try_clone()?;
        let counters = Arc::new(Counters::default());
        let (sender, receiver) = sync_channel(queue);
        let thread = std::thread::Builder::new()
            .name("loaddensity-request-log".into())
            .spawn({
                let counters = counters.clone();
                move || write_loop(output, &receiver, &counters)
            })?;
        Ok((
            sender,
            Self {
                file,
                counters,
                thread: Mutex::new(Some(thread)),
            },
        ))
    }

    /// Records appended to the file.
    pub(crate) fn written(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }

    /// Records lost to write errors.
    pub(crate) fn lost(&self) -> u64 {
        self.counters.lost.load(Ordering::Relaxed)
    }

    /// Waits until every batch sent before this call is in the file.
    pub(crate) fn sync(&self, sender: &SyncSender<Message>) -> Result<(), RequestLogError> {
        let (done, wait) = sync_channel(1);
        sender
            .send(Message::Sync(done))
            .map_err(|_| RequestLogError::WriterGone)?;
        wait.recv().map_err(|_| RequestLogError::WriterGone)
    }

    /// Empties the file once the batches sent before are written (and discarded).
    pub(crate) fn truncate(&self, sender: &SyncSender<Message>) -> Result<(), RequestLogError> {
        let (done, wait) = sync_channel(1);
        sender
            .send(Message::Truncate(done))
            .map_err(|_| RequestLogError::WriterGone)?;
        wait.recv().map_err(|_| RequestLogError::WriterGone)
    }

    /// A new handle on the file, reading from its start.
    pub(crate) fn reopen(&self) -> Result<File, RequestLogError> {
        Ok(self.file.reopen()?)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // The sender is dropped before the writer (field order in `RequestLog`), so
        // the thread ends once it has written what was queued.
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn write_loop(mut output: File, receiver: &Receiver<Message>, counters: &Counters) {
    while let Ok(message) = receiver.recv() {
        match message {
            Message::Batch(bytes, records) => match output.write_all(&bytes) {
                Ok(()) => {
                    counters.written.fetch_add(records, Ordering::Relaxed);
                }
                Err(error) => {
                    if counters.lost.fetch_add(records, Ordering::Relaxed) == 0 {
                        tracing::warn!("request log: cannot write the temporary file: {error}");
                    }
                }
            },
            Message::Sync(done) => {
                let _ = output.flush();
                let _ = done.send(());
            }
            Message::Truncate(done) => {
                let _ = output.set_len(0).and_then(|()| output.rewind());
                counters.written.store(0, Ordering::Relaxed);
                counters.lost.store(0, Ordering::Relaxed);
                let _ = done.send(());
            }
        }
    }
}
