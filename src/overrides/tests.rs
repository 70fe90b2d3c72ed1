//! Tests of the parent module, compiled only under #[cfg(test)].

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::config::Config;
use crate::injector::{InjectionError, Injector, Outcome};
use crate::probes::tests::{injector_with_status_port, pod_with_probes, status_port_template};
use crate::surgery::{STATUS_ANNOTATION, SurgeryError, uninject};

fn builtin() -> Injector {
    Injector::new(Config::default()).unwrap()
}

fn merged(base: Value, overlay: Value) -> Value {
    let mut base = base;
    merge_container(base.as_object_mut().unwrap(), overlay.as_object().unwrap());
    base
}

#[test]
fn the_pods_fields_win_and_maps_merge_key_by_key() {
    let base = json!({
        "name": "istio-proxy", "image": "proxy:1", "args": ["proxy", "sidecar"],
        "resources": {"requests": {"cpu": "10m", "memory": "128Mi"}},
        "securityContext": {"runAsUser": 1337, "readOnlyRootFilesystem": true,
                            "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}},
        "imagePullPolicy": "IfNotPresent"
    });
    let overlay = json!({
        "name": "istio-proxy", "image": "mine:2", "args": ["proxy", "router"],
        "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}},
        "securityContext": {"runAsUser": 1000, "capabilities": {"add": ["NET_RAW"]}},
        "imagePullPolicy": null,
        "tty": true
    });
    assert_eq!(
        merged(base, overlay),
        json!({
            "name": "istio-proxy", "image": "mine:2", "args": ["proxy", "router"],
            "resources": {"requests": {"cpu": "1", "memory": "128Mi"}, "limits": {"cpu": "2"}},
            "securityContext": {"runAsUser": 1000, "readOnlyRootFilesystem": true,
                                "capabilities": {"add": ["NET_RAW"], "drop": ["ALL"]}},
            "tty": true
        })
    );
}

#[test]
fn named_lists_merge_by_their_key() {
    let base = json!({
        "name": "istio-proxy",
        "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, {"name": "B", "value": "1"}],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "volumeMounts": [{"mountPath": "/etc/istio/proxy", "name": "istio-envoy"}],
        "command": ["a", "b"]
    });
    let overlay = json!({
        "env": [{"name": "A", "value": "mine"}, {"name": "C", "value": "3"}],
        "ports": [{"containerPort": 15090, "name": "metrics"}, {"containerPort": 8080}],
        "volumeMounts": [{"mountPath": "/etc/istio/proxy", "readOnly": true}, {"mountPath": "/x", "name": "x"}],
        "command": ["c"]
    });
    assert_eq!(
        merged(base, overlay),
        json!({
            "name": "istio-proxy",
            // An env entry is replaced whole: `value` beside `valueFrom` would be refused.
            "env": [{"name": "A", "value": "mine"}, {"name": "B", "value": "1"}, {"name": "C", "value": "3"}],
            "ports": [{"containerPort": 15090, "name": "metrics", "protocol": "TCP"}, {"containerPort": 8080}],
            "volumeMounts": [{"mountPath": "/etc/istio/proxy", "name": "istio-envoy", "readOnly": true},
                             {"mountPath": "/x", "name": "x"}],
            "command": ["c"]
        })
    );
}

#[test]
fn image_auto_keeps_the_injected_image_and_an_action_replaces_the_others() {
    let base = json!({
        "name": "istio-proxy", "image": "proxy:1",
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}, "periodSeconds": 2},
        "lifecycle": {"postStart": {"exec": {"command": ["pilot-agent", "wait"]}}}
    });
    let overlay = json!({
        "image": "auto",
        "readinessProbe": {"exec": {"command": ["true"]}},
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}}
    });
    assert_eq!(
        merged(base, overlay),
        json!({
            "name": "istio-proxy", "image": "proxy:1",
            "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 2},
            "lifecycle": {"postStart": {"exec": {"command": ["pilot-agent", "wait"]}},
                          "preStop": {"sleep": {"seconds": 5}}}
        })
    );
}

fn sleep_with(containers: Value) -> Value {
    json!({
        "metadata": {"name": "sleep", "labels": {"app": "sleep"}},
        "spec": {"containers": containers}
    })
}

fn proxy_of(pod: &Value) -> &Value {
    ["containers", "initContainers"]
        .iter()
        .filter_map(|l| pod["spec"][l].as_array())
        .flatten()
        .find(|c| c["name"] == "istio-proxy")
        .unwrap()
}

#[test]
fn a_declared_proxy_is_merged_over_the_injected_one() {
    let original = sleep_with(json!([
        {"name": "istio-proxy", "image": "mine:1", "resources": {"limits": {"memory": "1Gi"}},
         "env": [{"name": "EXTRA", "value": "1"}]},
        {"name": "sleep", "image": "curl"}
    ]));
    let mut pod = original.clone();
    let outcome = builtin().inject(&mut pod, Some("default")).unwrap();
    assert!(
        matches!(outcome, Outcome::Injected { changed: true, .. }),
        "{outcome:?}"
    );
    // The proxy goes where the injector puts it: last.
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sleep", "istio-proxy"]);
    let proxy = proxy_of(&pod);
    assert_eq!(proxy["image"], "mine:1");
    assert_eq!(
        proxy["resources"],
        json!({"requests": {"cpu": "10m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}})
    );
    assert_eq!(proxy["args"][0], "proxy");
    let env = proxy["env"].as_array().unwrap();
    assert_eq!(env.last().unwrap(), &json!({"name": "EXTRA", "value": "1"}));
    assert_eq!(env[0]["name"], "POD_NAME");
    assert_eq!(
        pod["metadata"]["annotations"][OVERRIDES_ANNOTATION],
        r#"{"containers":[{"env":[{"name":"EXTRA","value":"1"}],"image":"mine:1","name":"istio-proxy","resources":{"limits":{"memory":"1Gi"}}}],"indexes":{"containers":[0]}}"#
    );

    let mut again = pod.clone();
    let outcome = builtin().inject(&mut again, Some("default")).unwrap();
    assert!(
        matches!(outcome, Outcome::Injected { changed: false, .. }),
        "{outcome:?}"
    );
    assert_eq!(again, pod);
    uninject(&mut again).unwrap();
    assert_eq!(again, original);
}

#[test]
fn a_declared_init_container_is_merged_too() {
    let mut original = sleep_with(json!([{"name": "sleep", "image": "curl"}]));
    original["spec"]["initContainers"] = json!([
        {"name": "migrate", "image": "db"},
        {"name": "istio-init", "image": "my-init:1", "securityContext": {"privileged": true}}
    ]);
    let mut pod = original.clone();
    builtin().inject(&mut pod, Some("default")).unwrap();
    let init = &pod["spec"]["initContainers"];
    assert_eq!(init.as_array().unwrap().len(), 2);
    assert_eq!(init[0]["name"], "migrate");
    assert_eq!(init[1]["name"], "istio-init");
    assert_eq!(init[1]["image"], "my-init:1");
    assert_eq!(
        init[1]["securityContext"],
        json!({"capabilities": {"add": ["NET_ADMIN"]}, "privileged": true})
    );
    uninject(&mut pod).unwrap();
    assert_eq!(pod, original);
}

#[test]
fn a_template_upgrade_keeps_the_users_fields_and_none_of_the_old_templates() {
    let original = sleep_with(json!([
        {"name": "sleep", "image": "curl"},
        {"name": "istio-proxy", "image": "mine:1"}
    ]));
    let mut old = Config::default();
    old.injector.template = crate::config::BUILTIN_TEMPLATE
        .replace(
            "    readOnlyRootFilesystem: true\n",
            "    readOnlyRootFilesystem: true\n    privileged: true\n",
        )
        .into();
    let mut pod = original.clone();
    Injector::new(old)
        .unwrap()
        .inject(&mut pod, Some("default"))
        .unwrap();
    assert_eq!(proxy_of(&pod)["securityContext"]["privileged"], true);

    let mut fresh = original.clone();
    builtin().inject(&mut fresh, Some("default")).unwrap();
    let outcome = builtin().inject(&mut pod, Some("default")).unwrap();
    assert!(
        matches!(outcome, Outcome::Injected { changed: true, .. }),
        "{outcome:?}"
    );
    assert_eq!(proxy_of(&pod)["image"], "mine:1");
    assert_eq!(proxy_of(&pod)["securityContext"].get("privileged"), None);
    assert_eq!(pod, fresh);
}

#[test]
fn a_native_sidecar_takes_the_override_declared_in_containers() {
    let mut config = Config::default();
    config.injector.native_sidecars = true;
    let injector = Injector::new(config).unwrap();
    let original = sleep_with(json!([
        {"name": "sleep", "image": "curl"},
        {"name": "istio-proxy", "image": "mine:1"}
    ]));
    let mut pod = original.clone();
    injector.inject(&mut pod, Some("default")).unwrap();
    assert_eq!(pod["spec"]["containers"].as_array().unwrap().len(), 1);
    let proxy = pod["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "istio-proxy")
        .unwrap();
    assert_eq!(proxy["image"], "mine:1");
    assert_eq!(proxy["restartPolicy"], "Always");
    let mut again = pod.clone();
    injector.inject(&mut again, Some("default")).unwrap();
    assert_eq!(again, pod);
    uninject(&mut pod).unwrap();
    assert_eq!(pod, original);
}

#[test]
fn an_annotation_istio_wrote_puts_its_containers_back_at_the_end() {
    let mut pod = sleep_with(json!([{"name": "sleep", "image": "curl"}]));
    builtin().inject(&mut pod, Some("default")).unwrap();
    pod["metadata"]["annotations"][OVERRIDES_ANNOTATION] =
        json!(r#"{"containers":[{"name":"istio-proxy","image":"istio-made"}]}"#);
    uninject(&mut pod).unwrap();
    assert_eq!(
        pod,
        sleep_with(json!([
            {"name": "sleep", "image": "curl"},
            {"name": "istio-proxy", "image": "istio-made"}
        ]))
    );
}

#[test]
fn the_annotation_adds_no_container_the_injection_did_not_make() {
    let mut pod = sleep_with(json!([{"name": "sleep", "image": "curl"}]));
    builtin().inject(&mut pod, Some("default")).unwrap();
    pod["metadata"]["annotations"][OVERRIDES_ANNOTATION] = json!(
        r#"{"containers":[{"name":"miner","image":"evil"},{"name":"sleep","image":"other"}],"initContainers":[{"name":"istio-init","image":"x"}],"indexes":{"containers":[0,1]}}"#
    );
    let mut again = pod.clone();
    builtin().inject(&mut again, Some("default")).unwrap();
    let names: Vec<&str> = again["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sleep", "istio-proxy"]);
    assert_eq!(again["spec"]["containers"][0]["image"], "curl");
    // istio-init was injected, so its remembered declaration is the user's: it is merged.
    assert_eq!(again["spec"]["initContainers"][0]["image"], "x");
}

#[test]
fn a_hand_written_annotation_is_honoured_on_first_injection() {
    let mut pod = sleep_with(json!([{"name": "sleep", "image": "curl"}]));
    pod["metadata"]["annotations"] = json!({OVERRIDES_ANNOTATION:
        r#"{"containers":[{"name":"istio-proxy","image":"by-hand"},{"name":"miner","image":"evil"}]}"#});
    builtin().inject(&mut pod, Some("default")).unwrap();
    assert_eq!(proxy_of(&pod)["image"], "by-hand");
    assert_eq!(pod["spec"]["containers"].as_array().unwrap().len(), 2);
}

#[test]
fn an_unreadable_annotation_is_refused_with_its_name() {
    let mut pod = sleep_with(json!([{"name": "sleep", "image": "curl"}]));
    builtin().inject(&mut pod, Some("default")).unwrap();
    for bad in [
        json!("{not json"),
        json!(7),
        json!(r#"{"containers":{}}"#),
        json!("[]"),
    ] {
        let mut broken = pod.clone();
        broken["metadata"]["annotations"][OVERRIDES_ANNOTATION] = bad.clone();
        let err = builtin()
            .inject(&mut broken.clone(), Some("default"))
            .unwrap_err();
        assert!(
            matches!(
                err,
                InjectionError::Pod(SurgeryError::Overrides(OverridesError::BadAnnotation(_)))
            ),
            "{bad}: {err:?}"
        );
        assert!(err.to_string().contains(OVERRIDES_ANNOTATION), "{err}");
        assert!(uninject(&mut broken).is_err(), "{bad}");
    }
}

#[test]
fn overrides_and_probes_together() {
    let injector = injector_with_status_port(|_| {});
    let original = sleep_with(json!([
        {"name": "sleep", "image": "curl", "readinessProbe": {"httpGet": {"port": 80}}},
        {"name": "istio-proxy", "env": [{"name": "ISTIO_META_X", "value": "y"}]}
    ]));
    let mut pod = original.clone();
    injector.inject(&mut pod, Some("default")).unwrap();
    let env = proxy_of(&pod)["env"].as_array().unwrap();
    let names: Vec<&str> = env.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        &names[names.len() - 2..],
        ["ISTIO_META_X", crate::probes::APP_PROBERS_ENV]
    );
    let mut again = pod.clone();
    injector.inject(&mut again, Some("default")).unwrap();
    assert_eq!(again, pod);
    uninject(&mut again).unwrap();
    assert_eq!(again, original);
    assert!(
        original["metadata"].get("annotations").is_none()
            && pod["metadata"]["annotations"]
                .get(STATUS_ANNOTATION)
                .is_some()
    );
}

/// A declaration of an injected container, at a random place in the pod.
fn declaration() -> impl Strategy<Value = (bool, usize, Value)> {
    let image = prop_oneof![Just(None), Just(Some("auto")), Just(Some("mine:1"))];
    let env = prop::option::of(prop::sample::select(vec!["POD_NAME", "EXTRA"]));
    (any::<bool>(), 0usize..4, image, env, any::<bool>()).prop_map(
        |(init, index, image, env, resources)| {
            let mut c = json!({"name": if init { "istio-init" } else { "istio-proxy" }});
            if let Some(image) = image {
                c["image"] = json!(image);
            }
            if let Some(env) = env {
                c["env"] = json!([{"name": env, "value": "v"}]);
            }
            if resources {
                c["resources"] = json!({"limits": {"cpu": "1"}, "requests": null});
            }
            (init, index, c)
        },
    )
}

proptest! {
    #[test]
    fn overridden_pods_reinject_to_themselves_and_uninject_to_the_original(
        pod in pod_with_probes(),
        declarations in prop::collection::vec(declaration(), 0..3),
        native in any::<bool>(),
        hold in any::<bool>(),
        agent in any::<bool>(),
    ) {
        let mut pod = pod;
        for (init, index, container) in declarations {
            let field = if init { "initContainers" } else { "containers" };
            let name = container["name"].clone();
            let spec = &mut pod["spec"];
            let taken = ["containers", "initContainers"].iter().any(|l| {
                spec[l].as_array().is_some_and(|cs| cs.iter().any(|c| c["name"] == name))
            });
            if taken {
                continue;
            }
            if spec[field].is_null() {
                spec[field] = json!([]);
            }
            let items = spec[field].as_array_mut().unwrap();
            let at = index.min(items.len());
            items.insert(at, container);
        }
        let configure = |c: &mut Config| {
            c.injector.native_sidecars = native;
            c.mesh.default_config.hold_application_until_proxy_starts = hold;
            if agent {
                c.injector.template = status_port_template().into();
            }
        };
        let mut config = Config::default();
        configure(&mut config);
        let injector = Injector::new(config).unwrap();
        crate::injector::roundtrip::check(&injector, &pod)?;
    }
}

/// Found by the `admission_pod` fuzz target (`fuzz/seeds/admission_pod/regression-duplicate-override`
/// and `regression-duplicate-across-lists`): two declarations of `istio-proxy`, or a name twice
/// among the init containers beside a status naming it, made an injection that a second one
/// changed. A pod whose containers share a name is refused before anything is stripped, naming
/// both places, as the API server would refuse it.
#[test]
fn containers_sharing_a_name_are_refused_before_stripping() {
    let mut pod = sleep_with(json!([
        {"name": "istio-proxy", "image": "first"},
        {"name": "istio-proxy", "image": "second"}
    ]));
    let error = builtin()
        .inject(&mut pod, Some("default"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "container name \"istio-proxy\" is used twice (spec.containers[0] and spec.containers[1]); Kubernetes refuses a pod whose containers share a name"
    );

    let mut pod = sleep_with(json!([{"name": "app", "image": "app"}]));
    pod["spec"]["initContainers"] = json!([
        {"name": "istio-proxy", "image": "x"},
        {"name": "istio-init", "image": "x"},
        {"name": "istio-proxy", "image": "y"}
    ]);
    pod["metadata"]["annotations"] = json!({
        "sidecar.istio.io/status": r#"{"initContainers":["istio-init"],"containers":[],"volumes":[]}"#
    });
    let before = pod.clone();
    let error = builtin()
        .inject(&mut pod, Some("default"))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(
            "container name \"istio-proxy\" is used twice (spec.initContainers[0] and spec.initContainers[2])"
        ),
        "{error}"
    );
    assert_eq!(pod, before);
}
