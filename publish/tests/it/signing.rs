//! Sign with a cosign key, verify with its public key: against the registry, where cosign and
//! Kubewarden look for the signature (the `sha256-<digest>.sig` tag).

use std::path::{Path, PathBuf};

use crate::support::{Registry, assert_error, publish, run, small_module, stderr, stdout};

const PASSWORD: &str = "key-password";

/// Generates `<dir>/<name>.key` and `.pub` with the command.
fn key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.join(name);
    let output = run(publish()
        .arg("generate-key-pair")
        .arg("--output-prefix")
        .arg(&prefix)
        .env("COSIGN_PASSWORD", PASSWORD));
    assert!(output.status.success(), "{}", stderr(&output));
    let private = prefix.with_extension("key");
    let text = std::fs::read_to_string(&private).unwrap();
    assert!(text.contains("ENCRYPTED SIGSTORE PRIVATE KEY"), "{text}");
    (private, prefix.with_extension("pub"))
}

#[test]
fn a_signed_policy_verifies_with_its_key_only() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let dir = registry.dir.path();
    let (private, public) = key_pair(dir, "release");
    let (_, other_public) = key_pair(dir, "other");
    let module = small_module(dir);
    let target = format!("{}/small:v0.1.0", registry.host);
    let pushed = run(publish()
        .arg("push")
        .arg(&module)
        .arg(&target)
        .arg("--insecure")
        .arg(&registry.host));
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    let immutable = stdout(&pushed).trim().to_string();
    let digest = immutable.rsplit('@').next().unwrap().to_string();

    let verify = |reference: &str, key: &Path, annotation: Option<&str>| {
        let mut command = publish();
        command
            .arg("verify")
            .arg(reference)
            .arg("--key")
            .arg(key)
            .env("INSECURE_REGISTRIES", &registry.host);
        if let Some(annotation) = annotation {
            command.arg("-a").arg(annotation);
        }
        run(&mut command)
    };

    let unsigned = verify(&target, &public, None);
    assert_error(&unsigned, 1, "no signature of");

    let wrong_password = run(publish()
        .arg("sign")
        .arg(&target)
        .arg("--key")
        .arg(&private)
        .arg("--insecure")
        .arg(&registry.host)
        .env("COSIGN_PASSWORD", "not-the-password"));
    assert_error(&wrong_password, 2, "cannot read the private key");

    let signed = run(publish()
        .arg("sign")
        .arg(&target)
        .arg("--key")
        .arg(&private)
        .arg("-a")
        .arg("release=v0.1.0")
        .arg("--insecure")
        .arg(&registry.host)
        .env("COSIGN_PASSWORD", PASSWORD));
    assert!(signed.status.success(), "{}", stderr(&signed));
    let signature_tag = format!("{}/small:{}.sig", registry.host, digest.replace(':', "-"));
    assert_eq!(stdout(&signed).trim(), signature_tag);

    for reference in [target.as_str(), immutable.as_str()] {
        let ok = verify(reference, &public, Some("release=v0.1.0"));
        assert!(ok.status.success(), "{}", stderr(&ok));
        assert!(stdout(&ok).starts_with("verified: "), "{}", stdout(&ok));
    }
    let other = verify(&target, &other_public, None);
    assert_error(&other, 1, "verifies with the given key");
    let annotation = verify(&target, &public, Some("release=v9"));
    assert_error(&annotation, 1, "and annotations release=v9");
}
