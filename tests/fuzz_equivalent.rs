//! The CI-bounded twin of the `cargo fuzz` target `executor_inputs` (see `fuzz/`): arbitrary
//! byte strings decoded into executor inputs by the same driver, so a byte string the fuzzer
//! finds can be pasted here as a regression case. Properties: no panic, unique command ids,
//! bounded task table, every answerable command awaited exactly once.
#[path = "support/byte_driver.rs"]
mod byte_driver;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_drive_the_executor_soundly(data in prop::collection::vec(any::<u8>(), 0..4096)) {
        if let Err(broken) = byte_driver::run(&data, 400) {
            prop_assert!(false, "{}", broken.0);
        }
    }
}

/// The driver decodes real programs: a long byte string runs many steps, so the property above
/// exercises the executor rather than stopping at the config.
#[test]
fn byte_strings_decode_into_long_programs() {
    let data: Vec<u8> = (0..4000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let steps = byte_driver::run(&data, 10_000).expect("sound");
    assert!(steps > 200, "only {steps} steps decoded");
}

/// Negative control: a driver that forgets the commands it must answer is caught by the
/// awaited-replies check on the very program that passes above.
#[test]
fn the_checks_fire_on_a_forgetful_driver() {
    let data: Vec<u8> = (0..4000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let broken = byte_driver::run_with(&data, 10_000, true).expect_err("must be caught");
    assert!(broken.0.starts_with("awaited replies"), "{}", broken.0);
}
