//! Writing pages on a thread of their own: a [`BackgroundWriter`] borrows the store while a resource is
//! read, so SQLite writes one page while the runner fetches, parses and maps the next. Writing was more
//! than half of a sync's time, all of it on the runner's thread (what this gains on the project's
//! machine is in ARCHITECTURE.md).
//!
//! The caller gets each page's outcome before the next page is queued (the next page is checked and
//! turned into stored text first, while the previous one is still being written). So at most one page
//! waits, a page that fails to write stops the resource before anything after it is written, and the
//! order of writes is the order of calls, exactly as with [`Store::write_page`].

use super::records::{PageOutcome, PageWrite};
use super::write::PreparedPage;
use super::{Result, Store, StoreError};
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

enum Job {
    Page { page: Box<Queued>, done: oneshot::Sender<Written> },
    Flush(oneshot::Sender<Result<()>>),
}

/// The store, lent to its writer thread until this value is dropped (or [`BackgroundWriter::finish`]ed),
/// when the thread ends after its last job and the store is back where it was borrowed from, with the
/// open batch still open: the store commits it on its next write or when it is closed, as usual.
pub struct BackgroundWriter<'s> {
    home: &'s mut Store,
    path: PathBuf,
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<Store>>,
    /// The outcome of the page queued last, not yet handed to the caller.
    pending: Option<oneshot::Receiver<Written>>,
}

struct Queued {
    page: PageWrite,
    prepared: PreparedPage,
}

/// A page's outcome, with the page itself: it is freed by the thread that allocated it, because with
/// glibc's allocator freeing on the writer thread contends for the runner thread's heap.
struct Written {
    outcome: Result<PageOutcome>,
    _page: Box<Queued>,
}

impl Store {
    /// Lends this store to a writer thread for page writes; see [`BackgroundWriter`].
    pub fn background(&mut self) -> Result<BackgroundWriter<'_>> {
        let path = self.path.clone();
        // While the thread has the store, `self` is a connection to nothing, which nobody can reach: the
        // writer borrows `self` mutably until it gives the store back.
        let stand_in =
            Connection::open_in_memory().map_err(|source| StoreError::Open { path: path.clone(), source })?;
        let mut store = std::mem::replace(self, Store { conn: stand_in, path: path.clone(), batch: None });
        let (jobs, queue) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new().name("store-writer".into()).spawn(move || {
            for job in queue {
                match job {
                    Job::Page { page, done } => {
                        let result =
                            catch_unwind(AssertUnwindSafe(|| store.write_prepared(&page.page, &page.prepared)))
                                .unwrap_or_else(|_| Err(panicked(&mut store, "writing a page")));
                        let _ = done.send(Written { outcome: result, _page: page });
                    }
                    Job::Flush(done) => {
                        let result = catch_unwind(AssertUnwindSafe(|| store.flush()))
                            .unwrap_or_else(|_| Err(panicked(&mut store, "committing written pages")));
                        let _ = done.send(result);
                    }
                }
            }
            store
        });
        match spawned {
            Ok(thread) => {
                Ok(BackgroundWriter { home: self, path, jobs: Some(jobs), thread: Some(thread), pending: None })
            }
            Err(e) => {
                Err(StoreError::Invalid { op: "starting the store's writer thread".into(), problem: e.to_string() })
            }
        }
    }
}

/// A write that panicked may have stopped half-way: its batch is rolled back, so the store stays
/// consistent and the next run fetches those pages again.
fn panicked(store: &mut Store, op: &str) -> StoreError {
    store.abandon_batch();
    StoreError::Invalid {
        op: format!("{op} in the store {}", store.path.display()),
        problem: "the writer failed unexpectedly; the pages of the open batch were rolled back".into(),
    }
}

fn stopped(op: &str) -> StoreError {
    StoreError::Invalid { op: op.into(), problem: "the store's writer thread stopped".into() }
}

impl BackgroundWriter<'_> {
    /// Checks `page` and turns its rows into stored text here, then waits for the page queued before it,
    /// and queues this one. Returns the outcome of the page before it (`None` for the first page).
    /// A page that cannot be stored is refused here, whole, as [`Store::write_page`] refuses it.
    pub async fn write_page(&mut self, page: PageWrite) -> Result<Option<PageOutcome>> {
        let prepared = PreparedPage::new(&self.path, &page)?;
        let previous = self.settle().await?;
        let (done, outcome) = oneshot::channel();
        self.send(Job::Page { page: Box::new(Queued { page, prepared }), done }, "writing a page")?;
        self.pending = Some(outcome);
        Ok(previous)
    }

    /// Waits for the page queued last, if any, and returns its outcome.
    pub async fn settle(&mut self) -> Result<Option<PageOutcome>> {
        match self.pending.take() {
            Some(written) => written.await.map_err(|_| stopped("writing a page"))?.outcome.map(Some),
            None => Ok(None),
        }
    }

    /// Waits for the page queued last, then commits the open batch ([`Store::flush`]). Returns the
    /// outcome of that page.
    pub async fn flush(&mut self) -> Result<Option<PageOutcome>> {
        let previous = self.settle().await?;
        let (done, flushed) = oneshot::channel();
        self.send(Job::Flush(done), "committing written pages")?;
        flushed.await.map_err(|_| stopped("committing written pages"))??;
        Ok(previous)
    }

    /// Waits for the page queued last and gives the store back. Returns that page's outcome.
    pub async fn finish(mut self) -> Result<Option<PageOutcome>> {
        self.settle().await
    }

    fn send(&self, job: Job, op: &str) -> Result<()> {
        self.jobs.as_ref().and_then(|jobs| jobs.send(job).ok()).ok_or_else(|| stopped(op))
    }
}

impl Drop for BackgroundWriter<'_> {
    /// Ends the thread once its queue is empty (at most one page) and puts the store back.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && let Ok(store) = thread.join()
        {
            *self.home = store;
        }
    }
}
