//! Giving freed heap memory back to the operating system.
//!
//! **Large blocks are mapped on their own.** glibc serves a block from the heap unless it is
//! larger than its mmap threshold, and raises that threshold (up to 32 MiB) each time a
//! mapped block is freed. After the first few Sync requests and state reads of a few
//! hundred KiB, all of them came from the heap, where they left holes between long-lived
//! records. [`configure`] pins the threshold at 64 KiB, so such blocks are mapped and
//! unmapped whole (measured: 3 MiB less resident at 10,000 Services after a burst).
//!
//! A burst of thousands of Services leaves glibc's arenas full of freed chunks between live
//! ones; glibc returns only the top of each heap by itself, so the resident set stays near
//! the burst's peak. `malloc_trim(0)` also releases the free pages inside the heaps. The
//! controller calls it once a second while it has been busy, never in a hot path.
#![allow(unsafe_code)]

/// The mmap threshold [`configure`] sets.
pub const MMAP_THRESHOLD: i32 = 64 * 1024;

/// Pins glibc's mmap threshold (see the module documentation); call once, before threads
/// start. glibc only; elsewhere a no-op.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of glibc's allocator; called before any other
    // thread exists, as its documentation asks.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Asks the allocator to release free memory (glibc only; elsewhere a no-op).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only walks glibc's own arenas under their
    // locks and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
