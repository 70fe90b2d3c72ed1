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
