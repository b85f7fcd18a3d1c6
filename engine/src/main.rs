//! The `engine` command. All printing and exit codes live in `cli`.

fn main() -> std::process::ExitCode {
    return_large_buffers_to_the_system();
    engine::cli::main()
}

/// Gives buffers of 256 KiB and more (response bodies, a page's rows and texts) mappings of their own,
/// returned to the system when freed. By default glibc raises that threshold as such buffers come and
/// go, then serves them from heaps that keep the space once freed: with a response read on one thread,
/// mapped on another and written on a third, a sync's resident memory grew by about 4 MiB that way.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_buffers_to_the_system() {
    // SAFETY: `mallopt` only sets a parameter of the allocator; nothing else runs yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_buffers_to_the_system() {}
