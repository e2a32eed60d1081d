//! The `ses-report` binary: everything lives in the library; see `ses_report::main_with_args`.

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: an ingest allocates and frees small strings and vectors
/// for every record (parsed fields, statement parameters), and glibc's allocator spent about a
/// seventh of our instructions on them (`scripts/cpu.sh`: 1,539.8 M to 1,312.8 M on the 10k
/// day; BENCHMARKS.md, "CPU per event").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    ExitCode::from(ses_report::main_with_args(&args).code())
}
