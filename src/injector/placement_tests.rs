//! The injector's placement of the proxy (native sidecar, hold), `proxy.istio.io/config` and
//! the modern agent shape, through the whole pipeline.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::config::{Config, InjectorConfig};
use crate::placement::NATIVE_SIDECAR_ANNOTATION;
use crate::surgery::{Uninjection, read_status, uninject};

fn injector(native: bool, hold: bool) -> Injector {
    let mut config = Config {
        injector: InjectorConfig {
            native_sidecars: native,
            ..Default::default()
        },
        ..Default::default()
    };
    config
        .mesh
        .default_config
        .hold_application_until_proxy_starts = hold;
    Injector::new(config).unwrap()
}

fn app_pod() -> Value {
    json!({
        "metadata": {"name": "app", "labels": {"app": "app"}},
        "spec": {
            "initContainers": [{"name": "wait-for-db", "image": "busybox"}],
            "containers": [{"name": "app", "image": "app:1"}]
        }
    })
}

fn names(pod: &Value, list: &str) -> Vec<String> {
    pod["spec"][list]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn proxy(pod: &Value) -> &Value {
    pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .chain(pod["spec"]["containers"].as_array())
        .flatten()
        .find(|c| c["name"] == "istio-proxy")
        .unwrap()
}

fn injected(injector: &Injector, pod: &Value) -> Value {
    let mut pod = pod.clone();
    injector.inject(&mut pod, Some("default")).unwrap();
    pod
}

#[test]
fn a_native_sidecar_runs_after_istio_init_and_before_the_apps_init_containers() {
    let pod = injected(&injector(true, false), &app_pod());
    assert_eq!(
        names(&pod, "initContainers"),
        ["istio-init", "istio-proxy", "wait-for-db"]
    );
    assert_eq!(names(&pod, "containers"), ["app"]);
    let proxy = proxy(&pod);
    assert_eq!(proxy["restartPolicy"], "Always");
    // Kubernetes starts the next container once this probe passes: the app waits for the proxy.
    assert_eq!(proxy["startupProbe"]["httpGet"]["port"], 15020);
    assert!(proxy["lifecycle"].get("postStart").is_none());
    let status = read_status(&pod).unwrap().unwrap();
    assert_eq!(status.names.init_containers, ["istio-init", "istio-proxy"]);
    assert!(status.names.containers.is_empty());
}

#[test]
fn the_pods_annotation_chooses_the_placement() {
    let mut pod = app_pod();
    pod["metadata"]["annotations"] = json!({NATIVE_SIDECAR_ANNOTATION: "true"});
    let native = injected(&injector(false, false), &pod);
    assert_eq!(proxy(&native)["restartPolicy"], "Always");
    pod["metadata"]["annotations"] = json!({NATIVE_SIDECAR_ANNOTATION: "false"});
    let regular = injected(&injector(true, false), &pod);
    assert_eq!(names(&regular, "containers"), ["app", "istio-proxy"]);
    // Without the switches the proxy is the seed's: no status port, no probes.
    assert!(proxy(&regular).get("readinessProbe").is_none());
    assert!(!proxy(&regular)["args"].to_string().contains("statusPort"));

    pod["metadata"]["annotations"] = json!({NATIVE_SIDECAR_ANNOTATION: "yes"});
    let mut unclear = pod.clone();
    let outcome = injector(true, false)
        .inject(&mut unclear, Some("default"))
        .unwrap();
    let Outcome::Injected { decision, .. } = outcome else {
        panic!("not injected: {outcome:?}");
    };
    assert!(
        decision
            .warnings
            .iter()
            .any(|w| w.contains(NATIVE_SIDECAR_ANNOTATION)),
        "{decision:?}"
    );
    assert_eq!(proxy(&unclear)["restartPolicy"], "Always");
}

#[test]
fn hold_puts_the_proxy_first_with_the_wait_hook_and_native_needs_neither() {
    let held = injected(&injector(false, true), &app_pod());
    assert_eq!(names(&held, "containers"), ["istio-proxy", "app"]);
    assert_eq!(
        proxy(&held)["lifecycle"]["postStart"],
        json!({"exec": {"command": ["pilot-agent", "wait"]}})
    );
    assert_eq!(proxy(&held)["readinessProbe"]["httpGet"]["port"], 15020);

    let native = injected(&injector(true, true), &app_pod());
    assert_eq!(names(&native, "containers"), ["app"]);
    assert!(proxy(&native)["lifecycle"].get("postStart").is_none());
}

#[test]
fn placements_move_both_ways_as_if_injected_so_at_once() {
    let (regular, native) = (injector(false, false), injector(true, false));
    let as_regular = injected(&regular, &app_pod());
    let as_native = injected(&native, &app_pod());
    assert_eq!(injected(&native, &as_regular), as_native);
    assert_eq!(injected(&regular, &as_native), as_regular);
    let held = injector(false, true);
    assert_eq!(injected(&held, &as_native), injected(&held, &app_pod()));
}

#[test]
fn uninject_removes_a_native_sidecar_with_or_without_status() {
    let mut pod = injected(&injector(true, false), &app_pod());
    assert!(matches!(
        uninject(&mut pod).unwrap(),
        Uninjection::FromStatus { ref kept, .. } if kept.is_empty()
    ));
    assert_eq!(pod, app_pod());

    let mut legacy = injected(&injector(true, false), &app_pod());
    legacy["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    assert!(matches!(
        uninject(&mut legacy).unwrap(),
        Uninjection::WellKnownNames(_)
    ));
    assert_eq!(names(&legacy, "initContainers"), ["wait-for-db"]);
}

#[test]
fn a_go_template_gets_the_native_placement_from_the_injector() {
    // Istio 1.0's reading drops a container's restartPolicy; the injector sets it afterwards.
    let template = "containers:\n- name: istio-proxy\n  image: proxy-[[ .ObjectMeta.Name ]]\n  restartPolicy: Never\n";
    let config = Config {
        injector: InjectorConfig {
            template: template.into(),
            native_sidecars: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let pod = injected(&Injector::new(config).unwrap(), &app_pod());
    assert_eq!(
        names(&pod, "initContainers"),
        ["istio-proxy", "wait-for-db"]
    );
    let proxy = proxy(&pod);
    assert_eq!(proxy["restartPolicy"], "Always");
    assert_eq!(proxy["image"], "proxy-app");
    // A custom template shapes its proxy itself: no modern agent is laid over it.
    assert!(proxy.get("startupProbe").is_none());
}

#[test]
fn templates_of_both_dialects_read_native_sidecars() {
    for template in [
        "containers:\n- name: istio-proxy\n  image: p\n  args: ['{% if NativeSidecars %}native{% else %}regular{% endif %}']\n",
        "containers:\n- name: istio-proxy\n  image: p-[[ .ObjectMeta.Name ]]\n  args: ['[[ if .NativeSidecars ]]native[[ else ]]regular[[ end ]]']\n",
    ] {
        for (native, arg) in [(true, "native"), (false, "regular")] {
            let config = Config {
                injector: InjectorConfig {
                    template: template.to_string().into(),
                    native_sidecars: native,
                    ..Default::default()
                },
                ..Default::default()
            };
            let pod = injected(&Injector::new(config).unwrap(), &app_pod());
            assert_eq!(proxy(&pod)["args"], json!([arg]), "{template}");
        }
    }
}

#[test]
fn proxy_config_annotation_merges_over_the_mesh_default_for_the_template() {
    let mut pod = app_pod();
    pod["metadata"]["annotations"] = json!({
        "proxy.istio.io/config":
            "{\"holdApplicationUntilProxyStarts\": true, \"drainDuration\": \"10s\", \"proxyMetadata\": {\"A\": \"1\"}}",
        "status.sidecar.istio.io/port": "15021",
    });
    let pod = injected(&injector(false, false), &pod);
    assert_eq!(names(&pod, "containers"), ["istio-proxy", "app"]);
    let proxy = proxy(&pod);
    let args = proxy["args"].as_array().unwrap();
    assert!(args.contains(&json!("10s")), "{args:?}");
    assert!(args.contains(&json!("15021")), "{args:?}");
    assert_eq!(proxy["readinessProbe"]["httpGet"]["port"], 15021);
    let env = proxy["env"].as_array().unwrap();
    assert!(env.contains(&json!({"name": "A", "value": "1"})), "{env:?}");
    let config = env.iter().find(|e| e["name"] == "PROXY_CONFIG").unwrap();
    let config: Value = serde_json::from_str(config["value"].as_str().unwrap()).unwrap();
    assert_eq!(config["drainDuration"], "10s");
}

#[test]
fn a_bad_proxy_config_annotation_is_refused_by_name() {
    for bad in [
        "holdApplicationUntilProxyStarts: maybe",
        "[1]",
        "drainDuration: soon",
    ] {
        let mut pod = app_pod();
        pod["metadata"]["annotations"] = json!({"proxy.istio.io/config": bad});
        let before = pod.clone();
        let err = injector(false, false)
            .inject(&mut pod, Some("default"))
            .unwrap_err();
        assert!(matches!(err, InjectionError::Annotations(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "invalid value '{bad}' for annotation 'proxy.istio.io/config': "
            )),
            "{text}"
        );
        assert_eq!(pod, before);
    }
}

fn arbitrary_pod() -> impl Strategy<Value = Value> {
    let name = "[a-z][a-z0-9-]{0,6}";
    (
        prop::collection::vec(name, 1..3),
        prop::collection::vec(name, 0..3),
        prop::option::of(prop::sample::select(vec!["true", "false", "maybe"])),
        prop::option::of(prop::sample::select(vec![
            "holdApplicationUntilProxyStarts: true",
            "holdApplicationUntilProxyStarts: false",
            "{statusPort: 15021, proxyMetadata: {X: y}}",
        ])),
    )
        .prop_map(|(containers, inits, native, overlay)| {
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
            let mut annotations = serde_json::Map::new();
            if let Some(native) = native {
                annotations.insert(NATIVE_SIDECAR_ANNOTATION.into(), json!(native));
            }
            if let Some(overlay) = overlay {
                annotations.insert("proxy.istio.io/config".into(), json!(overlay));
            }
            if !annotations.is_empty() {
                pod["metadata"]["annotations"] = Value::Object(annotations);
            }
            pod
        })
}

proptest! {
    #[test]
    fn every_placement_is_idempotent_uninjectable_and_movable(
        pod in arbitrary_pod(),
        native in any::<bool>(),
        hold in any::<bool>(),
        other_native in any::<bool>(),
        other_hold in any::<bool>(),
    ) {
        let (this, other) = (injector(native, hold), injector(other_native, other_hold));
        let once = super::roundtrip::check(&this, &pod)?;
        // Injected under one config, then another: as if injected under the other at once.
        prop_assert_eq!(injected(&other, &once), injected(&other, &pod));
    }
}

/// Istio master's status for a native sidecar says `"containers":null` (Go writes a nil slice
/// so); an empty list would differ from what istioctl writes for the same pod.
#[test]
fn a_native_sidecars_status_writes_its_empty_container_list_as_null() {
    let pod = injected(&injector(true, false), &app_pod());
    let text = pod["metadata"]["annotations"]["sidecar.istio.io/status"]
        .as_str()
        .unwrap();
    let status: Value = serde_json::from_str(text).unwrap();
    assert_eq!(status["containers"], Value::Null);
    assert_eq!(status["imagePullSecrets"], Value::Null);
    assert_eq!(
        status["initContainers"],
        json!(["istio-init", "istio-proxy"])
    );
    // Read back, null is the empty list: uninjection still finds everything it added.
    let read = read_status(&pod).unwrap().unwrap();
    assert!(read.names.containers.is_empty());
    assert_eq!(read.names.init_containers, ["istio-init", "istio-proxy"]);
}
