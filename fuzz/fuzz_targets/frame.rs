//! libFuzzer entry for the `frame` target; the body is in ../targets/frame.rs
//! (shared with the replay test that runs the corpus in `cargo test`).
#![no_main]

#[path = "../targets/frame.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::run(data));
