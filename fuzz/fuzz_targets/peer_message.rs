#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaultmesh_fuzz::peer_message(data));
