#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| quorumkit_storage::image::fuzz_checks::image_decode(data));
