//! Arbitrary input sequences into the executor, decoded from the fuzzer's bytes by the same
//! driver as the CI proptest `tests/fuzz_equivalent.rs`: a crash here pastes there as a
//! regression case.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/byte_driver.rs"]
mod byte_driver;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = byte_driver::run(data, 2_000) {
        panic!("property broken: {}", broken.0);
    }
});
