//! The `ses-report` binary: everything lives in the library; see `ses_report::main_with_args`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    ExitCode::from(ses_report::main_with_args(&args).code())
}
