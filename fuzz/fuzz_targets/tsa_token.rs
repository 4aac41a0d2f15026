#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaultmesh_fuzz::tsa_token(data));
