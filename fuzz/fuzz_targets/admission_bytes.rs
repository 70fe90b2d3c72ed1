//! The policy's `validate` on raw bytes, as policy-server hands them to the module: the payload
//! `{"request": …, "settings": …}` read, the settings checked, the request reviewed. Every input
//! must end in a verdict; a panic is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sidecar_injector::admission::{self, NoCluster};
use sidecar_injector::settings::PolicySettings;

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let settings = payload.get("settings").cloned().unwrap_or(Value::Null);
    let mut request = payload.get("request").cloned().unwrap_or(Value::Null);
    if let Ok(settings) = PolicySettings::from_payload(&settings) {
        let _ = admission::review(settings, &NoCluster, &mut request);
    }
    // The webhook face reads whole AdmissionReviews.
    let _ = admission::respond_to_review(PolicySettings::from_payload(&Value::Null), &NoCluster, &payload);
});
