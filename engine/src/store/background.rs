//! Writing pages on a thread of their own: a [`BackgroundWriter`] borrows the store while a resource is
//! read, so SQLite writes one page while the runner fetches, parses and maps the next. Writing was more
//! than half of a sync's time, all of it on the runner's thread (what this gains on the project's
//! machine is in ARCHITECTURE.md).
//!
//! A page is checked on the caller's thread (a row that cannot be stored is refused at once, as
//! [`Store::write_page`] refuses it) and queued; the writer thread makes the stored text of rows whose
//! attributes come as maps (the runner hands over that text already made, see
//! [`BackgroundWriter::write_page_text`]), frees the maps and writes the page. At most
//! [`QUEUED_PAGES`] pages are queued; the caller waits for the oldest queued page's outcome when the
//! queue is full. The order of writes is the order of calls, and once a page fails to write the writer
//! refuses every page queued after it, so nothing after a failure is written.

use super::checkpoint::Checkpointer;
use super::records::{PageOutcome, PageWrite};
use super::write::PreparedPage;
use super::{Result, Store, StoreError};
use rusqlite::Connection;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Pages queued for the writer at most. A queued page holds its rows until the writer takes it (about
/// 2 MB for a page of 1,000 sign-ins with attribute maps, 0.5 MB as text): on the benchmark tenant two
/// pages were within the noise of one, and held 2-3 MB more with maps, 1-2 MB more with text.
pub const QUEUED_PAGES: usize = 1;

enum Job {
    Page {
        page: Box<PageWrite>,
        /// The stored text of each row's attributes, when the caller made it.
        attributes: Option<Vec<String>>,
        done: oneshot::Sender<Written>,
    },
    Flush(oneshot::Sender<Result<()>>),
    /// The caller has seen a failed write: pages queued from now on are written again.
    FailureSeen,
    /// No more pages: build the key indexes left out while loading.
    EndLoad(oneshot::Sender<Result<()>>),
}

/// The store, lent to its writer thread until this value is dropped (or [`BackgroundWriter::finish`]ed),
/// when the thread ends after its last job and the store is back where it was borrowed from, with the
/// open batch still open: the store commits it on its next write or when it is closed, as usual.
pub struct BackgroundWriter<'s> {
    home: &'s mut Store,
    path: PathBuf,
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<Store>>,
    /// The outcomes of the pages queued, oldest first, not yet handed to the caller.
    pending: VecDeque<oneshot::Receiver<Written>>,
    /// Pages queued at most.
    depth: usize,
}

/// A page's outcome, with what is left of the page (its key fields): it is freed by the thread that
/// allocated it, because with glibc's allocator freeing on the writer thread contends for the runner
/// thread's heap. The attribute maps, most of a page, are freed on the writer once its text is made.
struct Written {
    outcome: Result<PageOutcome>,
    _page: Box<PageWrite>,
}

impl Store {
    /// Lends this store to a writer thread for page writes; see [`BackgroundWriter`].
    pub fn background(&mut self) -> Result<BackgroundWriter<'_>> {
        self.background_queueing(QUEUED_PAGES)
    }

    /// [`Store::background`] with room for `depth` queued pages (at least one).
    pub(super) fn background_queueing(&mut self, depth: usize) -> Result<BackgroundWriter<'_>> {
        let path = self.path.clone();
        // While the thread has the store, `self` is a connection to nothing, which nobody can reach: the
        // writer borrows `self` mutably until it gives the store back.
        let stand_in =
            Connection::open_in_memory().map_err(|source| StoreError::Open { path: path.clone(), source })?;
        if self.checkpointer.is_none() {
            self.checkpointer = Checkpointer::start(&self.path, &mut self.conn);
        }
        let mut store = std::mem::replace(self, Store::with_connection(stand_in, path.clone()));
        let (jobs, queue) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new().name("store-writer".into()).spawn(move || {
            // Set by a failed write until the caller has seen the failure: the pages queued meanwhile were
            // meant to follow the failed one, so they are refused rather than written into a new batch.
            let mut failed = false;
            store.may_defer = true;
            for job in queue {
                match job {
                    Job::Page { mut page, attributes, done } => {
                        let result = if failed {
                            Err(StoreError::Invalid {
                                op: "writing a page".into(),
                                problem: "not written, because a page before it failed to write".into(),
                            })
                        } else {
                            catch_unwind(AssertUnwindSafe(|| {
                                let prepared = PreparedPage::new(&store.path, &page, attributes)?;
                                // From here the stored text is all that is written: the maps go now, not
                                // when the caller collects the outcome.
                                for row in &mut page.rows {
                                    drop(std::mem::take(row.attributes_mut()));
                                }
                                store.write_prepared(&page, &prepared)
                            }))
                            .unwrap_or_else(|_| Err(panicked(&mut store, "writing a page")))
                        };
                        failed |= result.is_err();
                        let _ = done.send(Written { outcome: result, _page: page });
                    }
                    Job::FailureSeen => failed = false,
                    Job::Flush(done) => {
                        let result = catch_unwind(AssertUnwindSafe(|| store.commit_batch()))
                            .unwrap_or_else(|_| Err(panicked(&mut store, "committing written pages")));
                        let _ = done.send(result);
                    }
                    Job::EndLoad(done) => {
                        let result = catch_unwind(AssertUnwindSafe(|| store.end_load()))
                            .unwrap_or_else(|_| Err(panicked(&mut store, "building key indexes")));
                        let _ = done.send(result);
                    }
                }
            }
            // Without `finish` (the caller gave up), the indexes are built here, or else on the next flush.
            let _ = store.end_load();
            store
        });
        match spawned {
            Ok(thread) => Ok(BackgroundWriter {
                home: self,
                path,
                jobs: Some(jobs),
                thread: Some(thread),
                pending: VecDeque::new(),
                depth: depth.max(1),
            }),
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
    /// Checks `page` here, then, when [`QUEUED_PAGES`] pages are queued already, waits for the oldest of
    /// them, and queues this one. Returns the outcome of the page waited for (`None` while the queue was
    /// not full). A page with a row that cannot be stored is refused here, whole, as
    /// [`Store::write_page`] refuses it.
    pub async fn write_page(&mut self, page: PageWrite) -> Result<Option<PageOutcome>> {
        self.queue(page, None).await
    }

    /// [`BackgroundWriter::write_page`] for rows whose attributes come as their stored text, as
    /// [`crate::map::map_record_text_into`] makes it: `attributes[i]` for `page.rows[i]`, whose map is
    /// not read.
    pub(crate) async fn write_page_text(
        &mut self,
        page: PageWrite,
        attributes: Vec<String>,
    ) -> Result<Option<PageOutcome>> {
        self.queue(page, Some(attributes)).await
    }

    async fn queue(&mut self, page: PageWrite, attributes: Option<Vec<String>>) -> Result<Option<PageOutcome>> {
        PreparedPage::check(&self.path, &page)?;
        let previous = if self.pending.len() >= self.depth { self.settle_oldest().await? } else { None };
        let (done, outcome) = oneshot::channel();
        self.send(Job::Page { page: Box::new(page), attributes, done }, "writing a page")?;
        self.pending.push_back(outcome);
        Ok(previous)
    }

    async fn settle_oldest(&mut self) -> Result<Option<PageOutcome>> {
        let Some(written) = self.pending.pop_front() else { return Ok(None) };
        let outcome = written.await.map_err(|_| stopped("writing a page"))?.outcome;
        if outcome.is_err() {
            // Whatever is still queued is refused; the next page the caller queues is written.
            self.drain().await;
        }
        outcome.map(Some)
    }

    /// Waits for the pages still queued behind a failed one (the writer refuses them) and tells the
    /// writer the failure was seen.
    async fn drain(&mut self) {
        while let Some(written) = self.pending.pop_front() {
            let _ = written.await;
        }
        let _ = self.send(Job::FailureSeen, "writing a page");
    }

    /// Waits for every queued page and returns their outcomes added up (`None` when none was queued).
    /// The first failure is returned; the pages after it were not written.
    pub async fn settle(&mut self) -> Result<Option<PageOutcome>> {
        let mut total: Option<PageOutcome> = None;
        let mut first_error = None;
        while let Some(written) = self.pending.pop_front() {
            match written.await.map_err(|_| stopped("writing a page")).and_then(|w| w.outcome) {
                Ok(outcome) => {
                    let sum = total.get_or_insert_with(PageOutcome::default);
                    sum.written += outcome.written;
                    sum.unchanged += outcome.unchanged;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => {
                let _ = self.send(Job::FailureSeen, "writing a page");
                Err(e)
            }
            None => Ok(total),
        }
    }

    /// Waits for every queued page, then commits the open batch (tables loading without their key index
    /// go on loading). Returns the outcomes of those pages added up.
    pub async fn flush(&mut self) -> Result<Option<PageOutcome>> {
        let previous = self.settle().await?;
        let (done, flushed) = oneshot::channel();
        self.send(Job::Flush(done), "committing written pages")?;
        flushed.await.map_err(|_| stopped("committing written pages"))??;
        Ok(previous)
    }

    /// Waits for every queued page, builds the key indexes left out while loading empty tables (in the
    /// open batch), and gives the store back. Returns the outcomes of those pages added up.
    pub async fn finish(mut self) -> Result<Option<PageOutcome>> {
        let outcome = self.settle().await?;
        let (done, built) = oneshot::channel();
        self.send(Job::EndLoad(done), "building key indexes")?;
        built.await.map_err(|_| stopped("building key indexes"))??;
        Ok(outcome)
    }

    fn send(&self, job: Job, op: &str) -> Result<()> {
        self.jobs.as_ref().and_then(|jobs| jobs.send(job).ok()).ok_or_else(|| stopped(op))
    }
}

impl Drop for BackgroundWriter<'_> {
    /// Ends the thread once its queue is empty (at most [`QUEUED_PAGES`] pages) and puts the store back.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && let Ok(store) = thread.join()
        {
            *self.home = store;
        }
    }
}
