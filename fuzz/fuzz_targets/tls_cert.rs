//! libFuzzer entry for the `tls_cert` target; the body is in ../targets/tls_cert.rs
//! (shared with the replay test that runs the corpus in `cargo test`).
#![no_main]

#[path = "../targets/tls_cert.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::run(data));
