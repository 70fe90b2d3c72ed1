//! Tests of the parent module, compiled only under #[cfg(test)].

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::config::{Config, InjectorConfig};
use crate::surgery::{STATUS_ANNOTATION, Uninjection, uninject};

fn builtin() -> Injector {
    Injector::new(Config::default()).unwrap()
}

fn sleep_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "sleep-7f9c-", "labels": {"app": "sleep", "pod-template-hash": "7f9c"}},
        "spec": {"containers": [{"name": "sleep", "image": "tutum/curl", "command": ["/bin/sleep", "infinity"],
                                  "imagePullPolicy": "IfNotPresent"}]}
    })
}

fn names(pod: &Value, list: &str) -> Vec<String> {
    pod["spec"][list]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sleep_pod_gets_init_container_proxy_volumes_and_status() {
    let mut pod = sleep_pod();
    let outcome = builtin().inject(&mut pod, Some("default")).unwrap();
    assert!(
        matches!(outcome, Outcome::Injected { changed: true, .. }),
        "{outcome:?}"
    );
    assert_eq!(names(&pod, "containers"), ["sleep", "istio-proxy"]);
    assert_eq!(names(&pod, "initContainers"), ["istio-init"]);
    assert_eq!(names(&pod, "volumes"), ["istio-envoy", "istio-certs"]);
    let status: Value = serde_json::from_str(
        pod["metadata"]["annotations"][STATUS_ANNOTATION]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(status["containers"], json!(["istio-proxy"]));
    assert_eq!(status["initContainers"], json!(["istio-init"]));
    assert_eq!(status["volumes"], json!(["istio-envoy", "istio-certs"]));
    assert_eq!(status["version"], builtin().template().version());
}

#[test]
fn injecting_twice_equals_injecting_once() {
    let injector = builtin();
    let mut once = sleep_pod();
    injector.inject(&mut once, Some("default")).unwrap();
    let mut twice = once.clone();
    let outcome = injector.inject(&mut twice, Some("default")).unwrap();
    assert!(
        matches!(outcome, Outcome::Injected { changed: false, .. }),
        "{outcome:?}"
    );
    assert_eq!(twice, once);
    assert_eq!(
        serde_json::to_string(&twice).unwrap(),
        serde_json::to_string(&once).unwrap()
    );
}

#[test]
fn a_changed_template_upgrades_the_old_injection() {
    let mut pod = sleep_pod();
    builtin().inject(&mut pod, Some("default")).unwrap();
    let new_template = "containers:\n- name: istio-proxy\n  image: proxy:2.0\nvolumes:\n- name: istio-v2\n  emptyDir: {}\n";
    let config = Config {
        injector: InjectorConfig {
            template: new_template.into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let outcome = Injector::new(config)
        .unwrap()
        .inject(&mut pod, Some("default"))
        .unwrap();
    assert!(matches!(outcome, Outcome::Injected { changed: true, .. }));
    assert_eq!(names(&pod, "containers"), ["sleep", "istio-proxy"]);
    assert_eq!(pod["spec"]["containers"][1]["image"], "proxy:2.0");
    assert_eq!(names(&pod, "initContainers"), Vec::<String>::new());
    assert_eq!(names(&pod, "volumes"), ["istio-v2"]);
}

#[test]
fn skipped_pods_are_untouched() {
    let mut pod = sleep_pod();
    pod["metadata"]["annotations"] = json!({"sidecar.istio.io/inject": "false"});
    let before = pod.clone();
    let outcome = builtin().inject(&mut pod, Some("default")).unwrap();
    assert!(matches!(outcome, Outcome::Skipped(_)));
    assert_eq!(pod, before);
}

#[test]
fn a_user_volume_with_an_injected_name_is_an_error() {
    // Containers named like injected ones are overrides (see overrides/tests.rs); volumes are not.
    let mut pod = sleep_pod();
    pod["spec"]["volumes"] = json!([{"name": "istio-envoy", "emptyDir": {}}]);
    let err = builtin().inject(&mut pod, Some("default")).unwrap_err();
    assert!(err.to_string().contains("istio-envoy"), "{err}");
}

#[test]
fn hold_application_puts_the_proxy_first() {
    let mut config = Config::default();
    config
        .mesh
        .default_config
        .hold_application_until_proxy_starts = true;
    let mut pod = sleep_pod();
    Injector::new(config)
        .unwrap()
        .inject(&mut pod, Some("default"))
        .unwrap();
    assert_eq!(names(&pod, "containers"), ["istio-proxy", "sleep"]);
}

#[test]
fn uninject_restores_the_pod_and_falls_back_to_well_known_names() {
    let original = sleep_pod();
    let mut pod = original.clone();
    builtin().inject(&mut pod, Some("default")).unwrap();
    assert!(matches!(
        uninject(&mut pod).unwrap(),
        Uninjection::FromStatus { .. }
    ));
    assert_eq!(pod, original);

    let mut legacy = original.clone();
    legacy["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "istio-proxy"}));
    legacy["spec"]["volumes"] = json!([{"name": "istio-envoy"}, {"name": "data"}]);
    assert!(matches!(
        uninject(&mut legacy).unwrap(),
        Uninjection::WellKnownNames(_)
    ));
    assert_eq!(names(&legacy, "containers"), ["sleep"]);
    assert_eq!(names(&legacy, "volumes"), ["data"]);
}

#[test]
fn malformed_status_is_a_clear_error() {
    let mut pod = sleep_pod();
    pod["metadata"]["annotations"] = json!({STATUS_ANNOTATION: "{not json"});
    let err = builtin().inject(&mut pod, Some("default")).unwrap_err();
    assert!(err.to_string().contains(STATUS_ANNOTATION), "{err}");
}

#[test]
fn objects_that_are_not_pods_are_errors_not_panics() {
    for mut odd in [
        json!(null),
        json!([]),
        json!({"spec": 3}),
        json!({"metadata": {}}),
        json!({"spec": {"volumes": 3}}),
    ] {
        let _ = builtin().inject(&mut odd, None);
    }
    let mut no_spec = json!({"metadata": {}});
    assert!(builtin().inject(&mut no_spec, None).is_err());
}

/// A pod with fields no Kubernetes version has, at several depths.
fn pod_with_invented_fields() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "inventedTopLevel": {"deep": [1, {"deeper": true}]},
        "metadata": {"name": "p", "labels": {"app": "x"}, "inventedMeta": "m"},
        "spec": {
            "inventedSpecField": {"k": "v"},
            "containers": [{
                "name": "app", "image": "app:1",
                "inventedContainerField": [1, 2, 3],
                "ports": [{"containerPort": 80, "inventedPortField": "p"}],
                "resources": {"limits": {"example.com/invented": "1"}, "inventedResources": {}}
            }],
            "volumes": [{"name": "data", "inventedVolumeSource": {"x": 1}}],
            "securityContext": {"inventedSecurity": 7}
        },
        "status": {"inventedStatus": "s"}
    })
}

#[test]
fn fields_unknown_to_kubernetes_survive() {
    let original = pod_with_invented_fields();
    let mut pod = original.clone();
    builtin().inject(&mut pod, Some("default")).unwrap();
    for pointer in [
        "/inventedTopLevel",
        "/metadata/inventedMeta",
        "/spec/inventedSpecField",
        "/spec/containers/0/inventedContainerField",
        "/spec/containers/0/ports/0/inventedPortField",
        "/spec/containers/0/resources",
        "/spec/volumes/0",
        "/spec/securityContext",
        "/status",
    ] {
        assert_eq!(pod.pointer(pointer), original.pointer(pointer), "{pointer}");
    }
    uninject(&mut pod).unwrap();
    assert_eq!(pod, original);
}

fn arbitrary_pod() -> impl Strategy<Value = Value> {
    let name = "[a-z][a-z0-9-]{0,8}";
    (
        prop::collection::vec(name, 1..4),
        prop::collection::vec(name, 0..3),
        prop::collection::vec(name, 0..3),
        prop::option::of("[a-z]{1,6}"),
        any::<bool>(),
    )
        .prop_map(|(containers, inits, volumes, app, with_extra)| {
            let unique = |v: Vec<String>, prefix: &str| -> Vec<Value> {
                v.into_iter()
                    .enumerate()
                    .map(|(i, n)| json!({"name": format!("{prefix}{i}-{n}")}))
                    .collect()
            };
            let mut pod =
                json!({"metadata": {"name": "p"}, "spec": {"containers": unique(containers, "c")}});
            if !inits.is_empty() {
                pod["spec"]["initContainers"] = Value::Array(unique(inits, "i"));
            }
            if !volumes.is_empty() {
                pod["spec"]["volumes"] = Value::Array(unique(volumes, "v"));
            }
            if let Some(app) = app {
                pod["metadata"]["labels"] = json!({"app": app});
            }
            if with_extra {
                pod["spec"]["x-extra"] = json!({"a": [1, 2]});
            }
            pod
        })
}

proptest! {
    #[test]
    fn inject_is_idempotent_and_uninject_reverses_it(pod in arbitrary_pod()) {
        let injector = builtin();
        crate::injector::roundtrip::check(&injector, &pod)?;
    }
}

#[test]
fn bad_annotations_are_an_error_naming_each_one() {
    let mut pod = sleep_pod();
    pod["metadata"]["annotations"] = json!({
        "traffic.sidecar.istio.io/includeOutboundIPRanges": "bad",
        "traffic.sidecar.istio.io/excludeInboundPorts": "http",
    });
    let before = pod.clone();
    let err = builtin().inject(&mut pod, Some("default")).unwrap_err();
    let InjectionError::Annotations(invalid) = &err else {
        panic!("not an annotation error: {err:?}");
    };
    assert_eq!(invalid.0.len(), 2);
    assert_eq!(
        err.to_string(),
        "invalid value 'bad' for annotation 'traffic.sidecar.istio.io/includeOutboundIPRanges': \
         includeIPRanges invalid: failed parsing cidr 'bad': no '/'; \
         invalid value 'http' for annotation 'traffic.sidecar.istio.io/excludeInboundPorts': \
         excludeInboundPorts invalid: failed parsing port 'http': expected an integer from 0 to 65535"
    );
    // Checked before anything is stripped or rendered.
    assert_eq!(pod, before);
}

#[test]
fn bad_annotations_do_not_matter_when_the_pod_is_skipped() {
    let mut pod = sleep_pod();
    pod["metadata"]["annotations"] = json!({
        "sidecar.istio.io/inject": "false",
        "sidecar.istio.io/interceptionMode": "bogus",
    });
    let outcome = builtin().inject(&mut pod, Some("default")).unwrap();
    assert!(matches!(outcome, Outcome::Skipped(_)), "{outcome:?}");
}

#[test]
fn good_annotations_reach_the_sidecar() {
    let mut pod = sleep_pod();
    pod["metadata"]["annotations"] = json!({
        "sidecar.istio.io/interceptionMode": "TPROXY",
        "traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.96.0.0/12",
    });
    builtin().inject(&mut pod, Some("default")).unwrap();
    let args = &pod["spec"]["initContainers"][0]["args"];
    assert!(
        args.as_array().unwrap().contains(&json!("TPROXY")),
        "{args}"
    );
    assert!(
        args.as_array().unwrap().contains(&json!("10.96.0.0/12")),
        "{args}"
    );
}

fn with_status(mut pod: Value, status: &str) -> Value {
    pod["metadata"]["annotations"] = json!({ STATUS_ANNOTATION: status });
    pod
}

fn warnings_of(outcome: &Outcome) -> Vec<String> {
    match outcome {
        Outcome::Injected { decision, .. } | Outcome::Skipped(decision) => {
            decision.warnings.clone()
        }
    }
}

#[test]
fn a_forged_status_never_removes_the_application() {
    // A status copied from another pod, or written by hand, naming the app's own container.
    let mut pod = with_status(
        sleep_pod(),
        r#"{"containers":["sleep"],"volumes":["data"]}"#,
    );
    pod["spec"]["volumes"] = json!([{"name": "data", "emptyDir": {}}]);
    let outcome = builtin().inject(&mut pod, Some("default")).unwrap();
    assert_eq!(names(&pod, "containers"), ["sleep", "istio-proxy"]);
    assert_eq!(
        names(&pod, "volumes"),
        ["data", "istio-envoy", "istio-certs"]
    );
    let warnings = warnings_of(&outcome);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(r#"spec.containers entry "sleep""#)
                && w.contains(r#"spec.volumes entry "data""#)
                && w.contains("kept, not removed")),
        "{warnings:?}"
    );
    // Uninject trusts it no more.
    let removed = uninject(&mut pod).unwrap();
    let Uninjection::FromStatus { kept, .. } = removed else {
        panic!("{removed:?}")
    };
    assert!(kept.is_empty(), "our own status lists only injected names");
    assert_eq!(names(&pod, "containers"), ["sleep"]);
    assert_eq!(names(&pod, "volumes"), ["data"]);
}

#[test]
fn a_stale_status_of_istio_names_is_still_an_upgrade() {
    // A previous injection's well-known names go, even when this template no longer makes them.
    let mut pod = with_status(
        sleep_pod(),
        r#"{"initContainers":["enable-core-dump"],"containers":["istio-proxy"]}"#,
    );
    pod["spec"]["initContainers"] = json!([{"name": "enable-core-dump", "image": "old"}]);
    pod["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "istio-proxy", "image": "old"}));
    let outcome = builtin().inject(&mut pod, Some("default")).unwrap();
    assert!(warnings_of(&outcome).is_empty());
    assert_eq!(names(&pod, "initContainers"), ["istio-init"]);
    assert_eq!(names(&pod, "containers"), ["sleep", "istio-proxy"]);
    assert_eq!(
        pod["spec"]["containers"][1]["image"],
        "istio.io/proxy:0.5.0"
    );
}

#[test]
fn a_custom_templates_own_names_are_replaced_on_reinjection() {
    let config = Config {
        injector: InjectorConfig {
            template: "containers:\n- name: my-proxy\n  image: p-{{ ObjectMeta.labels?.v }}x\n"
                .into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let injector = Injector::new(config).unwrap();
    let mut pod = sleep_pod();
    injector.inject(&mut pod, None).unwrap();
    pod["metadata"]["labels"]["v"] = json!("2");
    let outcome = injector.inject(&mut pod, None).unwrap();
    assert!(
        warnings_of(&outcome).is_empty(),
        "{:?}",
        warnings_of(&outcome)
    );
    assert_eq!(names(&pod, "containers"), ["sleep", "my-proxy"]);
    assert_eq!(pod["spec"]["containers"][1]["image"], "p-2x");
    // Uninject has no template: a name beyond Istio's is kept, and said so.
    let Uninjection::FromStatus { kept, .. } = uninject(&mut pod).unwrap() else {
        panic!()
    };
    assert_eq!(
        kept,
        vec![(crate::object::PodList::Containers, "my-proxy".to_string())]
    );
    assert_eq!(names(&pod, "containers"), ["sleep", "my-proxy"]);
}

#[test]
fn truncated_non_json_and_oversized_statuses_are_answered_not_trusted() {
    for status in [
        r#"{"containers":["sle"#.to_string(),
        "not json at all".to_string(),
        format!(
            r#"{{"containers":[{}]}}"#,
            vec![r#""sleep""#; 50_000].join(",")
        ),
    ] {
        let mut pod = with_status(sleep_pod(), &status);
        match builtin().inject(&mut pod, Some("default")) {
            Ok(_) => assert!(names(&pod, "containers").contains(&"sleep".to_string())),
            Err(e) => assert!(e.to_string().contains(STATUS_ANNOTATION), "{e}"),
        }
    }
}

#[test]
fn uninject_after_inject_is_the_identity_even_without_a_containers_list() {
    let original = json!({"metadata": {"name": "x"}, "spec": {"restartPolicy": "Never"}});
    let mut pod = original.clone();
    builtin().inject(&mut pod, Some("default")).unwrap();
    uninject(&mut pod).unwrap();
    assert_eq!(pod, original);
}
