#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kuvert::fuzz::trailer(data));
