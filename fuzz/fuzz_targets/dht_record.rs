#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaultmesh_fuzz::dht_record(data));
