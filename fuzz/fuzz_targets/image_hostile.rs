#![no_main]
use quorumkit_storage::image::fuzz_checks;
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::image_hostile(data));
