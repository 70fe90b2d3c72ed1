//! `validate_settings` on arbitrary JSON: an answer (accepted or refused with a message) for
//! every input; settings it accepts must build an injector that injects the sample pod.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sidecar_injector::settings::{PolicySettings, embedded_injector};

fuzz_target!(|data: &[u8]| {
    let Ok(settings) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(parsed) = PolicySettings::validate(&settings) {
        let injector = embedded_injector(parsed.config).expect("validated settings build");
        injector.check().expect("validated settings inject the sample pod");
    }
});
