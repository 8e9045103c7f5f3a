//! Giving freed heap memory back to the operating system.
//!
//! A burst of thousands of Services leaves glibc's arenas full of freed chunks between live
//! ones; glibc returns only the top of each heap by itself, so the resident set stays near
//! the burst's peak. `malloc_trim(0)` also releases the free pages inside the heaps. The
//! controller calls it once a second while it has been busy, never in a hot path.
#![allow(unsafe_code)]

/// Asks the allocator to release free memory (glibc only; elsewhere a no-op).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only walks glibc's own arenas under their
    // locks and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
