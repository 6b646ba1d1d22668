//! libFuzzer entry for the `relay_request` target; the body is in ../targets/relay_request.rs
//! (shared with the replay test that runs the corpus in `cargo test`).
#![no_main]

#[path = "../targets/relay_request.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::run(data));
