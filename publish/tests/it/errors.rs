//! Pushes that must fail: one line on stderr, exit status 2, and nothing left in the registry.

use crate::support::{
    PASSWORD, Registry, USER, assert_error, free_port, publish, run, small_module, stderr,
};

#[test]
fn a_version_tag_other_than_the_modules_is_refused_before_any_upload() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let module = small_module(registry.dir.path());
    for tag in ["0.1.0", "v0.2.0"] {
        let output = run(publish()
            .arg("push")
            .arg(&module)
            .arg(format!("{}/small:{tag}", registry.host))
            .arg("--insecure")
            .arg(&registry.host));
        assert_error(&output, 2, "a release tag is `v0.1.0`");
    }
    let output = run(publish()
        .arg("push")
        .arg(&module)
        .arg(format!("{}/small:v0.1.0+build!", registry.host)));
    assert_error(&output, 2, "invalid reference");
    assert!(!registry.has_repository("small"), "something was uploaded");
}

#[test]
fn a_registry_that_is_down_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let module = small_module(dir.path());
    let host = format!("127.0.0.1:{}", free_port());
    let output = run(publish()
        .arg("push")
        .arg(&module)
        .arg(format!("{host}/small:v0.1.0"))
        .arg("--insecure")
        .arg(&host));
    assert_error(&output, 2, &format!("push to {host}/small:v0.1.0"));
}

#[test]
fn bad_credentials_upload_nothing_and_good_ones_are_read_from_docker_config() {
    let Some(registry) = Registry::start_with_auth() else {
        return;
    };
    let module = small_module(registry.dir.path());
    let target = format!("{}/small:v0.1.0", registry.host);
    let push = |docker_config: Option<std::path::PathBuf>| {
        let mut command = publish();
        command
            .arg("push")
            .arg(&module)
            .arg(&target)
            .arg("--insecure")
            .arg(&registry.host);
        if let Some(dir) = docker_config {
            command.env("DOCKER_CONFIG", dir);
        }
        run(&mut command)
    };

    let anonymous = push(None);
    assert_error(&anonymous, 2, &format!("push to {target}"));
    let wrong = push(Some(registry.docker_config(USER, "wrong-password")));
    assert_error(&wrong, 2, &format!("push to {target}"));
    assert!(!registry.has_repository("small"), "something was uploaded");

    let right = push(Some(registry.docker_config(USER, PASSWORD)));
    assert!(right.status.success(), "{}", stderr(&right));
}

#[test]
fn an_unannotated_module_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("plain.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let output = run(publish()
        .arg("push")
        .arg(&module)
        .arg("127.0.0.1:1/small:v0.1.0"));
    assert_error(&output, 2, "make annotated-policy.wasm");
}
