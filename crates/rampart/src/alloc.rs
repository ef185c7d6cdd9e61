//! The process's global allocator, mimalloc, and the two settings Rampart changes.
//!
//! The workers allocate and free many small rows and per-batch Arrow buffers; glibc malloc
//! spent ~15% of their time in its free lists and page faults, so the binary (and the
//! benchmarks, which include this file) use mimalloc. With mimalloc's defaults a profile of
//! the pipeline benchmark then showed 24-30% of all CPU time in the kernel zeroing pages
//! (`clear_page_erms` under `do_huge_pmd_anonymous_page`): freed memory was handed back to
//! the OS 10 ms after it was freed and faulted in again as 2 MiB transparent huge pages
//! moments later. [`tune`] keeps freed memory for a second before handing it back and
//! turns transparent huge pages off for the process (docs/performance.md has the figures).

/// mimalloc as the global allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`'s index in mimalloc's `mi_option_e` (the same in its v2 and v3
/// headers; `libmimalloc-sys` exports no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long mimalloc keeps freed memory before returning it to the OS (its default: 10 ms).
const PURGE_DELAY_MS: std::ffi::c_long = 1_000;

/// Applies Rampart's allocator settings. Call first thing in `main`, before threads start.
/// A setting the user gave through mimalloc's own environment variables
/// (`MIMALLOC_PURGE_DELAY`, `MIMALLOC_ALLOW_THP`) is left as given.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a plain integer option; mimalloc reads it on each purge decision.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE takes plain integers and only sets a flag of this
        // process (no huge pages on later faults); a failure leaves huge pages on.
        let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if rc != 0 {
            tracing::debug!(
                "could not turn transparent huge pages off: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}
