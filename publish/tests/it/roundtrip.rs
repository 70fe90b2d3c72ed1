//! Push the built module, pull it back: the same bytes and digests, the artifact Kubewarden
//! pulls, and the same manifest digest when pushed again.

use std::time::Instant;

use policy_publish::registry::sha256_digest;

use crate::support::{Registry, annotated_policy, publish, run, stderr, stdout};

#[test]
fn the_built_module_comes_back_byte_for_byte() {
    let Some(module) = annotated_policy() else {
        return;
    };
    let Some(registry) = Registry::start() else {
        return;
    };
    let target = format!("registry://{}/sidecar-injector:v0.1.0", registry.host);
    let bytes = std::fs::read(&module).unwrap();

    let started = Instant::now();
    let pushed = run(publish()
        .arg("push")
        .arg(&module)
        .arg(&target)
        .arg("--insecure")
        .arg(&registry.host));
    let push_time = started.elapsed();
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    let immutable = stdout(&pushed).trim().to_string();
    let prefix = format!("{}/sidecar-injector@sha256:", registry.host);
    assert!(immutable.starts_with(&prefix), "{immutable}");

    // Pushed again: the same manifest, so the same immutable reference.
    let again = run(publish()
        .arg("push")
        .arg(&module)
        .arg(&target)
        .env("INSECURE_REGISTRIES", &registry.host));
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stdout(&again).trim(), immutable, "push is not idempotent");

    let pulled_path = registry.dir.path().join("pulled.wasm");
    let started = Instant::now();
    let inspected = run(publish()
        .arg("inspect")
        .arg(&immutable)
        .arg("--output")
        .arg(&pulled_path)
        .arg("--insecure")
        .arg(&registry.host));
    let pull_time = started.elapsed();
    assert!(inspected.status.success(), "{}", stderr(&inspected));
    let pulled = std::fs::read(&pulled_path).unwrap();
    assert!(
        pulled == bytes,
        "the pulled module differs from annotated-policy.wasm"
    );

    let report = stdout(&inspected);
    let digest = &immutable[immutable.len() - 71..];
    for expected in [
        format!("manifest digest:          {digest}"),
        format!("layer digest:             {}", sha256_digest(&bytes)),
        "layer media type:         application/vnd.wasm.content.layer.v1+wasm".to_string(),
        "config media type:        application/vnd.wasm.config.v1+json".to_string(),
        "mutating:                 true".to_string(),
        "context aware resources:  v1/Service, v1/ConfigMap".to_string(),
        "protocol version:         v1".to_string(),
        "io.kubewarden.policy.title               sidecar-injector".to_string(),
        "\nRules\n".to_string(),
        "\nUsage\n# sidecar-injector".to_string(),
    ] {
        assert!(report.contains(&expected), "`{expected}` not in:\n{report}");
    }
    // The numbers the issue asks for, in the test's output (`cargo test -- --nocapture`).
    eprintln!(
        "annotated-policy.wasm: {} bytes; push {:.2} s, pull {:.2} s (debug build, local registry); pulled bytes identical",
        bytes.len(),
        push_time.as_secs_f64(),
        pull_time.as_secs_f64()
    );
}

#[test]
fn the_manifest_is_kubewardens_wasm_artifact_with_the_metadata_annotations() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let module = crate::support::small_module(registry.dir.path());
    let target = format!("{}/policies/small:v0.1.0", registry.host);
    let pushed = run(publish()
        .arg("push")
        .arg(&module)
        .arg(&target)
        .arg("--insecure")
        .arg(&registry.host));
    assert!(pushed.status.success(), "{}", stderr(&pushed));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = policy_publish::Registry::new(std::slice::from_ref(&registry.host));
    let reference = policy_publish::reference::parse(&target).unwrap();
    let pulled = runtime.block_on(client.pull(&reference)).unwrap();
    let manifest = &pulled.manifest;
    assert_eq!(
        manifest.config.media_type,
        "application/vnd.wasm.config.v1+json"
    );
    assert_eq!(manifest.config.digest, sha256_digest(b"{}"));
    assert_eq!(manifest.layers.len(), 1);
    let annotations = manifest.annotations.clone().unwrap_or_default();
    assert_eq!(annotations["io.kubewarden.policy.title"], "small");
    assert_eq!(annotations["org.opencontainers.image.title"], "small");
    assert_eq!(annotations["org.opencontainers.image.version"], "0.1.0");
    assert!(
        !annotations.contains_key("io.kubewarden.policy.usage"),
        "multi-line annotations stay in the module, as kwctl push does"
    );
    assert_eq!(pulled.module, std::fs::read(&module).unwrap());
}
