//! libFuzzer entry for the `room_log` target; the body is in ../targets/room_log.rs
//! (shared with the replay test that runs the corpus in `cargo test`).
#![no_main]

#[path = "../targets/room_log.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::run(data));
