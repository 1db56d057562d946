//! The JSON watch-event and pod parsers take text straight from the API server's stream: any
//! byte string must give a value or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = podwarden::k8s_json::parse_watch_line(&text);
    let _ = podwarden::k8s_json::parse_pod(&text);
});
