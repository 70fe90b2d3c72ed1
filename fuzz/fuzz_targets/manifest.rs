//! kube-inject's manifest reader and writer on arbitrary text: inject with the built-in config,
//! then the properties kube-inject promises: injecting the output again changes nothing, and
//! uninjecting the output gives what uninjecting the input gives, once injected again: the same
//! documents, compared as values (a rewritten document's key order, and `metadata: null` against
//! no `metadata`, are not differences Kubernetes sees).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sidecar_injector::manifest;
use sidecar_injector::{Config, Injector};

fuzz_target!(|text: &str| {
    let Ok(injector) = Injector::new(Config::default()) else {
        return;
    };
    let Ok(injected) = manifest::inject(text, &injector) else {
        return;
    };
    let output = injected.to_yaml();
    let again = manifest::inject(&output, &injector).expect("the output reads back");
    assert_eq!(
        again.to_yaml(),
        output,
        "injecting twice changed the output"
    );
    let from_output = manifest::uninject(&output).expect("the output uninjects");
    // Without a status annotation uninject can only guess (Istio's well-known names), and a pod
    // declaring `istio-proxy` itself may be an override instead: no comparison then.
    let guessed = |m: &manifest::Manifest| m.warnings().any(|w| w.contains("well-known names"));
    if let Some(from_input) = manifest::uninject(text).ok().filter(|m| !guessed(m)) {
        assert_eq!(
            manifest::inject(&from_output.to_yaml(), &injector)
                .map(|m| documents(&m.to_yaml()))
                .ok(),
            manifest::inject(&from_input.to_yaml(), &injector)
                .map(|m| documents(&m.to_yaml()))
                .ok(),
            "uninject of the output and of the input inject differently"
        );
    }
});

/// The documents of a manifest as values; an empty or null `metadata` is no `metadata`.
fn documents(text: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    let mut out = Vec::new();
    // serde_yaml's document iterator can yield the same error forever: stop at the first one.
    for document in serde_yaml::Deserializer::from_str(text) {
        let Ok(mut value) = serde_json::Value::deserialize(document) else {
            break;
        };
        normalize(&mut value);
        out.push(value);
    }
    out
}

fn normalize(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if map
                .get("metadata")
                .is_some_and(|m| m.is_null() || m.as_object().is_some_and(|o| o.is_empty()))
            {
                map.remove("metadata");
            }
            map.values_mut().for_each(normalize);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}
