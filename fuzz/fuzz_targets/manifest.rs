//! kube-inject's manifest reader and writer on arbitrary text: inject with the built-in config,
//! then the properties kube-inject promises: injecting the output again changes nothing, and
//! uninjecting the output gives what uninjecting the input gives.
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
    assert_eq!(again.to_yaml(), output, "injecting twice changed the output");
    let from_output = manifest::uninject(&output).expect("the output uninjects");
    if let Ok(from_input) = manifest::uninject(text) {
        assert_eq!(
            manifest::inject(&from_output.to_yaml(), &injector).map(|m| m.to_yaml()).ok(),
            manifest::inject(&from_input.to_yaml(), &injector).map(|m| m.to_yaml()).ok(),
            "uninject of the output and of the input inject differently"
        );
    }
});
