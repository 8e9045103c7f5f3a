//! Giving freed heap memory back to the operating system.
//!
//! A Sync of 10,000 announcements briefly holds the request, the validated set and the diff;
//! glibc keeps the freed pages in its arenas, so the resident size would stay at the peak.
//! `malloc_trim(0)` returns them (measured: about 3 MiB after a 10,000-address Sync).

/// Asks the allocator to release free memory (glibc only; elsewhere a no-op).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only walks glibc's own arenas under their
    // locks and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
