//! Checkpointing the write-ahead log on a thread of its own, from the first [`BackgroundWriter`] on.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold: the writer then
//! syncs the log, copies it into the database file and syncs that, while the runner waits on a full
//! queue. On the project's machine those disk waits were a fifth of a first sync's wall time (a run with
//! `synchronous = OFF` was that much faster). Here the store's connection only counts frames after each
//! commit (a WAL hook): every [`STEP_BYTES`] it wakes a thread that checkpoints on a second connection
//! (`PASSIVE`: it never blocks the writer), so the disk works while the two threads compute. The hook
//! stays until the store is closed, so the commits that follow a resource (the sweep, run records, KRIs)
//! do not checkpoint in the foreground either.
//!
//! A log that is being checkpointed while commits keep coming is never fully copied, and SQLite only
//! starts it over from its beginning when it is: past [`LIMIT_BYTES`] the writer checkpoints the rest
//! itself, at most the frames of the last commit or two, and its next transaction starts the log over.
//! This bounds the log file and the shared-memory index that maps it (256 KiB at the limit with 8 KiB
//! pages).
//!
//! Checkpoints only move committed pages from the log into the database file: what is committed and
//! what a killed run leaves behind are exactly as without this thread.
//!
//! [`BackgroundWriter`]: super::BackgroundWriter

use rusqlite::hooks::Wal;
use rusqlite::{Connection, OpenFlags};
use std::os::raw::c_int;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;

/// Log bytes between two wake-ups of the checkpoint thread: the threshold of SQLite's own automatic
/// checkpoint as this store sets it.
const STEP_BYTES: i64 = super::schema::CHECKPOINT_BYTES;

/// Log bytes past which the writer checkpoints the rest itself, so that the log starts over.
const LIMIT_BYTES: i64 = 4 * STEP_BYTES;

/// The checkpoint thread of one writer connection. Dropping it stops the thread after the checkpoint
/// in progress, if any; the hook stays on the connection and no longer wakes anything, but still
/// checkpoints itself past the limit.
#[derive(Debug)]
pub(super) struct Checkpointer {
    wake: mpsc::SyncSender<()>,
    /// Set when the thread is to end: the hook holds a sender too, so the channel alone cannot tell.
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a second connection to `path` and hooks `writer`'s commits, replacing SQLite's automatic
    /// checkpoint. `None` when the connection cannot be opened or the thread not started: the writer then
    /// keeps SQLite's automatic checkpoint, which is slower but just as safe.
    pub(super) fn start(path: &Path, writer: &mut Connection) -> Option<Checkpointer> {
        let step = c_int::try_from(super::schema::frames(writer, STEP_BYTES).ok()?).ok()?;
        let limit = c_int::try_from(super::schema::frames(writer, LIMIT_BYTES).ok()?).ok()?;
        Self::with_frames(path, writer, step, limit)
    }

    /// [`Checkpointer::start`] with other thresholds (tests use small ones).
    pub(super) fn with_frames(path: &Path, writer: &mut Connection, step: c_int, limit: c_int) -> Option<Checkpointer> {
        // The writer's flags, except that the file must exist already.
        let own =
            Connection::open_with_flags(path, OpenFlags::default().difference(OpenFlags::SQLITE_OPEN_CREATE)).ok()?;
        own.busy_timeout(super::schema::BUSY_TIMEOUT).ok()?;
        // Under WAL, NORMAL syncs the log before a checkpoint and the database after it, as the writer does.
        own.pragma_update(None, "synchronous", "NORMAL").ok()?;
        // One pending wake-up is enough: a checkpoint copies every frame committed before it starts.
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let stopping = Arc::new(AtomicBool::new(false));
        let stop_seen = Arc::clone(&stopping);
        // Held by whoever checkpoints: SQLite refuses a second checkpoint while one runs (without waiting),
        // so the writer waits here for the thread's instead.
        let checkpointing = Arc::new(Mutex::new(()));
        let thread_checkpointing = Arc::clone(&checkpointing);
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                for () in woken {
                    if stop_seen.load(Ordering::Acquire) {
                        break;
                    }
                    // A failure (the writer holds a lock longer than the busy timeout, a full disk) leaves
                    // the frames in the log, where the next checkpoint or the writer's own finds them.
                    let _held = thread_checkpointing.lock().unwrap_or_else(PoisonError::into_inner);
                    let _ = own.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .ok()?;
        let hook_wake = wake.clone();
        // The log's length when the thread was last woken, plus a step: each checkpoint then has about
        // 64 MiB to copy, as SQLite's own would. Waking it after every commit synced the disk that much
        // more often and cost more than it saved.
        let mut next_wake = step;
        let hooked = writer.wal_hook(Some(move |wal: &mut Wal, frames: c_int| {
            if frames < next_wake - step {
                // The log has started over since the last wake-up.
                next_wake = step;
            }
            if frames >= limit {
                // After the thread's checkpoint in progress, if any, copy the rest: the log is then wholly
                // in the database file and the writer's next transaction starts it over. A failure leaves
                // it for the next commit; an error returned from here would make the commit that just
                // succeeded look failed, so none is.
                let _held = checkpointing.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = wal.checkpoint();
            } else if frames >= next_wake {
                // Full means a wake-up is pending already.
                let _ = hook_wake.try_send(());
                next_wake = frames + step;
            }
            Ok(())
        }));
        let checkpointer = Checkpointer { wake, stopping, thread: Some(thread) };
        hooked.ok().map(|()| checkpointer)
    }

    /// Wakes the thread for a checkpoint now, whatever the log's length: when writing is over for a
    /// while, the copy and the disk sync are then done while other work runs, not when the store closes.
    pub(super) fn wake_now(&self) {
        // Full means a wake-up is pending already.
        let _ = self.wake.try_send(());
    }

    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stopping.store(true, Ordering::Release);
            // Full means a wake-up is pending, after which the thread sees the flag.
            let _ = self.wake.try_send(());
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.join();
    }
}
