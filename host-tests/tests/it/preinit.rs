//! `policy.wasm` is the cargo-built module pre-initialised: same interface, same answers.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

use host_tests::{BUILD_INJECTOR_CARGO, Policy};
use wasmtime::wasmparser::{Parser, Payload};

/// The module as cargo builds it, compiled once for the whole test binary.
pub fn cargo_module() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        host_tests::load_built(&host_tests::injector_cargo_wasm(), BUILD_INJECTOR_CARGO)
            .unwrap_or_else(|err| panic!("{err:#}"))
    })
}

/// Export names and `module/name` imports of a module file.
fn interface(path: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let bytes = std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let (mut exports, mut imports) = (BTreeSet::new(), BTreeSet::new());
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload.expect("a valid module") {
            Payload::ExportSection(section) => {
                for export in section {
                    exports.insert(export.expect("an export").name.to_owned());
                }
            }
            Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    let import = import.expect("an import");
                    imports.insert(format!("{}/{}", import.module, import.name));
                }
            }
            _ => {}
        }
    }
    (exports, imports)
}

#[test]
fn pre_initialisation_keeps_the_interface_and_drops_only_the_init_exports() {
    let (cargo_exports, cargo_imports) = interface(&host_tests::injector_cargo_wasm());
    let (exports, imports) = interface(&host_tests::injector_wasm());
    assert!(cargo_exports.contains(host_tests::preinit::INIT_EXPORT));
    let dropped: BTreeSet<String> = cargo_exports.difference(&exports).cloned().collect();
    let expected: BTreeSet<String> = [host_tests::preinit::INIT_EXPORT, "_initialize"]
        .into_iter()
        .filter(|name| cargo_exports.contains(*name))
        .map(str::to_owned)
        .collect();
    assert_eq!(dropped, expected);
    assert!(exports.is_subset(&cargo_exports), "no export is added");
    for needed in ["memory", "__guest_call", "wapc_init"] {
        assert!(exports.contains(needed), "policy.wasm must export {needed}");
    }
    assert_eq!(
        imports, cargo_imports,
        "the imports policy-server links stay the same"
    );
}

#[test]
fn pre_initialisation_is_reproducible_byte_for_byte() {
    // `make policy.wasm` pre-initialised the cargo module once; doing it again here must give
    // the same bytes, so a published module can be rebuilt and checked against its digest.
    let cargo_module = std::fs::read(host_tests::injector_cargo_wasm()).expect("built");
    let shipped = std::fs::read(host_tests::injector_wasm()).expect("built");
    let again = host_tests::preinitialize(&cargo_module).expect("pre-initialises");
    assert!(
        again == shipped,
        "policy.wasm ({} B) differs from a second pre-initialisation ({} B)",
        shipped.len(),
        again.len()
    );
}

/// A host that keeps one instance for many requests (a plain webhook host, `kwctl run`) gets
/// the same answer every time, and the instance stops growing: the pre-initialised module
/// frees every admission's memory but the first's, and its bump region starts over once all is
/// given back (`reuse.rs` asserts the memory does not grow at all); the module before
/// pre-initialisation uses talc, which reuses freed memory. 30 pods of 2000 env vars allocate
/// about 32 MB in all, twice the region.
#[test]
fn one_instance_serves_many_admissions_and_its_memory_levels_off() {
    let request =
        host_tests::requests::pod_create_request(host_tests::requests::pod_with_env_vars(2000));
    let payload = host_tests::validation_payload(&request, &serde_json::json!({}));
    for (name, policy) in [
        ("policy.wasm", crate::injector::injector()),
        ("the module before pre-initialisation", cargo_module()),
    ] {
        let calls = policy
            .call_on_one_instance("validate", &vec![payload.clone(); 30])
            .unwrap_or_else(|err| panic!("{name}: {err:?}"));
        let (first, _) = &calls[0];
        let response: serde_json::Value = serde_json::from_slice(first).expect("JSON");
        assert_eq!(response["accepted"], true, "{name}: {response}");
        assert!(response["mutated_object"].is_object(), "{name}: {response}");
        for (i, (answer, _)) in calls.iter().enumerate() {
            assert!(answer == first, "{name}: call {i} answered differently");
        }
        let memory_at = |call: usize| calls[call - 1].1;
        let late_growth = memory_at(30) - memory_at(20);
        assert!(
            late_growth <= 2 << 20,
            "{name}: memory grew by {late_growth} B over calls 20 to 30 (at 20: {} B, at 30: {} B)",
            memory_at(20),
            memory_at(30)
        );
    }
}

/// A pod as the API server hands it over (defaults, owner reference, `managedFields`), sent
/// again and again to one instance: the pre-initialised module reuses the freed blocks of each
/// admission (the template's many copies of the metadata), so its answers must stay those of
/// the module before pre-initialisation, byte for byte, and the pod must keep all it came with.
#[test]
fn reused_memory_gives_the_same_answers_for_a_pod_with_real_metadata() {
    let pod = host_tests::requests::sleep_pod_from_deployment();
    let request = host_tests::requests::pod_create_request(pod.clone());
    let payload = host_tests::validation_payload(&request, &serde_json::json!({}));
    let answers = same_answers_on_one_instance(&vec![payload; 20]);
    let expected = &answers[0];
    for (i, answer) in answers.iter().enumerate() {
        assert!(answer == expected, "answer {i} differs");
    }
    let response: serde_json::Value = serde_json::from_slice(expected).expect("JSON");
    let mutated = &response["mutated_object"];
    let names: Vec<&str> = mutated["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["sleep", "istio-proxy"], "{response}");
    assert_eq!(
        mutated["metadata"]["managedFields"],
        pod["metadata"]["managedFields"]
    );
    assert_eq!(
        mutated["metadata"]["ownerReferences"],
        pod["metadata"]["ownerReferences"]
    );
    assert_eq!(mutated["spec"]["tolerations"], pod["spec"]["tolerations"]);
    let volumes = mutated["spec"]["volumes"].as_array().expect("volumes");
    assert_eq!(
        volumes[0], pod["spec"]["volumes"][0],
        "the pod's own volume comes first"
    );
    assert_eq!(
        volumes.len(),
        3,
        "istio-envoy and istio-certs appended: {response}"
    );
}

/// Pods of many shapes in a row on one instance: metadata from none to kilobytes (annotation
/// values longer than the free lists' largest class among them), env vars, opted-out pods and
/// custom images. Every block the pre-initialised module frees is handed out again to a later
/// request of its class, so a mix-up in the free lists would corrupt some later answer; each
/// must equal the answer of the module before pre-initialisation, which uses talc throughout.
#[test]
fn memory_reused_across_pods_of_every_shape_gives_the_same_answers() {
    let payloads: Vec<Vec<u8>> = (0..40usize)
        .map(|i| {
            let mut pod = host_tests::requests::pod_with_env_vars(i * 13 % 150);
            let meta = &mut pod["metadata"];
            for l in 0..i % 7 {
                meta["labels"][format!("label-{l}")] = serde_json::json!("x".repeat(l * 5));
            }
            meta["annotations"] = serde_json::json!({
                "note": "n".repeat(i * 97 % 3000),
                "sidecar.istio.io/proxyImage": format!("proxy:{i}"),
            });
            if i % 5 == 4 {
                meta["annotations"]["sidecar.istio.io/inject"] = serde_json::json!("false");
            }
            if i % 3 == 0 {
                meta["managedFields"] =
                    host_tests::requests::sleep_pod_from_deployment()["metadata"]["managedFields"]
                        .clone();
            }
            let request = host_tests::requests::pod_create_request(pod);
            host_tests::validation_payload(&request, &serde_json::json!({}))
        })
        .collect();
    let mut injected = 0;
    for (i, answer) in same_answers_on_one_instance(&payloads).iter().enumerate() {
        let response: serde_json::Value = serde_json::from_slice(answer).expect("JSON");
        assert_eq!(response["accepted"], true, "pod {i}: {response}");
        if let Some(image) = response["mutated_object"]["spec"]["containers"]
            .as_array()
            .and_then(|containers| containers.last())
            .and_then(|proxy| proxy["image"].as_str())
        {
            assert_eq!(image, format!("proxy:{i}"), "pod {i}");
            injected += 1;
        }
    }
    assert_eq!(injected, 32, "every pod but the 8 opted out is injected");
}

/// What `policy.wasm` answers to `payloads`, sent in order to one instance, after checking that
/// one instance of the module before pre-initialisation (talc throughout) answers the same,
/// byte for byte, to each.
fn same_answers_on_one_instance(payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let [shipped, cargo] = [crate::injector::injector(), cargo_module()].map(|policy| {
        policy
            .call_on_one_instance("validate", payloads)
            .unwrap_or_else(|err| panic!("{err:?}"))
    });
    for (i, ((answer, _), (expected, _))) in shipped.iter().zip(&cargo).enumerate() {
        assert!(
            answer == expected,
            "payload {i}: {} != {}",
            String::from_utf8_lossy(answer),
            String::from_utf8_lossy(expected)
        );
    }
    assert_eq!(shipped.len(), payloads.len(), "one answer per payload");
    shipped.into_iter().map(|(answer, _)| answer).collect()
}
