//! The `ses-report` binary: everything lives in the library; see `ses_report::main_with_args`.

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: an ingest allocates and frees small strings and vectors
/// for every record (parsed fields, statement parameters), and glibc's allocator spent about a
/// seventh of our instructions on them (`scripts/cpu.sh`: 1,539.8 M to 1,312.8 M on the 10k
/// day; BENCHMARKS.md, "CPU per event").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: 15 in the option enums of mimalloc v2 and v3 (the sys
/// crate names no constant for it). 0 gives freed pages back to the OS at once rather than after
/// its default delay (1 s in the v3 that mimalloc 0.1.52 builds, 10 ms in v2): the Mongo ingest
/// of a 100k day peaked at 43 MB with the delay and at 35 MB without (docs/benchmark-notes.md,
/// "The allocator"). The `no_thp` feature (Cargo.toml) keeps its arenas off huge pages.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Set only where the option reads one of its documented defaults, so that a mimalloc whose
    // options were numbered otherwise is left as it is.
    // SAFETY: mi_option_get and mi_option_set read and write one of mimalloc's option cells;
    // any option number is accepted (an unknown one is reported and ignored).
    unsafe {
        if matches!(
            libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY),
            10 | 1000
        ) {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
    let args: Vec<String> = std::env::args().collect();
    ExitCode::from(ses_report::main_with_args(&args).code())
}
