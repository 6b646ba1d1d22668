//! libFuzzer entry for the `cert_chain` target; the body is in ../targets/cert_chain.rs
//! (shared with the replay test that runs the corpus in `cargo test`).
#![no_main]

#[path = "../targets/cert_chain.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::run(data));
