//! The `engine` command. All printing and exit codes live in `cli`.

fn main() -> std::process::ExitCode {
    engine::cli::main()
}

/// jemalloc instead of glibc's allocator: a sync allocates and frees millions of small values (parsed
/// records, attribute maps, stored texts) on three threads, and glibc spent about a quarter of the CPU
/// time in `malloc`, `free` and merging freed chunks (ARCHITECTURE.md has the measurements). SQLite keeps
/// the system allocator.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts. One arena: the threads take turns rather than each keeping
/// free memory of its own. Freed pages go back to the system 250 ms after they are no longer used: each
/// return is a system call that interrupts every thread of the process, and with 20 ms they cost a
/// first sync 10 % of its time; 250 ms kept about 0.5 MB more resident. The per-thread caches are kept
/// small (larger ones were 4 % faster for 1 MB more).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
static ALLOCATOR_OPTIONS: Options =
    Options(c"narenas:1,dirty_decay_ms:250,muzzy_decay_ms:0,tcache_max:256,lg_tcache_nslots_mul:-3".as_ptr());

/// A C string pointer that may be shared: it points at a constant.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[repr(transparent)]
struct Options(*const std::ffi::c_char);

// SAFETY: the pointer is to a `'static` constant that nothing writes.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe impl Sync for Options {}
