//! Differential fuzzing of the two SES record parsers: on any text, the fast path either steps
//! aside or gives exactly the general path's event, and it never answers where the general path
//! refuses (issue 9: lone surrogates, out-of-range numbers, deep nesting in skipped fields).
//! Run: `cargo fuzz run parsers_agree --sanitizer none`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ses_report::fuzzing::parsers_disagree;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let (Some(disagreement), _) = parsers_disagree(text) {
            panic!("{disagreement}");
        }
    }
});
