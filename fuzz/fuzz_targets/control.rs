//! libFuzzer entry for the `control` target; the body is in ../targets/control.rs
//! (shared with the replay test that runs the corpus in `cargo test`).
#![no_main]

#[path = "../targets/control.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::run(data));
