//! cargo fuzz target: see pgwarden::fuzz::literals (the checks live in the crate, so
//! the regular test suite runs them too).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pgwarden::fuzz::literals(data));
