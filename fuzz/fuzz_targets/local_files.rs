#![no_main]
use quorumkit_storage::sim::fuzz_checks;
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::local_files(data));
