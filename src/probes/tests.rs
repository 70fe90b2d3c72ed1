//! Tests of the parent module, compiled only under #[cfg(test)].

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::config::{BUILTIN_TEMPLATE, Config};
use crate::injector::{Injector, Outcome};
use crate::surgery::uninject;

/// The built-in template with a status port, as Istio 1.1–1.8 templates pass it to the agent.
pub(crate) fn status_port_template() -> String {
    BUILTIN_TEMPLATE.replace(
        "  - --controlPlaneAuthPolicy\n",
        "  - --statusPort\n  - {{ ObjectMeta | annotation: \"status.sidecar.istio.io/port\", \"15020\" }}\n  - --controlPlaneAuthPolicy\n",
    )
}

pub(crate) fn injector_with_status_port(configure: impl FnOnce(&mut Config)) -> Injector {
    let mut config = Config::default();
    config.injector.template = status_port_template().into();
    configure(&mut config);
    Injector::new(config).unwrap()
}

fn proxy(args: Value) -> Value {
    json!({"name": "istio-proxy", "image": "proxy", "args": args, "env": [{"name": "A", "value": "b"}]})
}

/// Istio's `hello-probes.yaml` pod (pkg/kube/inject/testdata/inject), with a proxy on port 15020.
fn hello_probes() -> Value {
    json!({
        "metadata": {"name": "hello"},
        "spec": {"containers": [
            {"name": "hello", "image": "hello",
             "ports": [{"name": "http", "containerPort": 80}],
             "livenessProbe": {"httpGet": {"port": "http"}},
             "readinessProbe": {"httpGet": {"port": 3333}},
             "lifecycle": {"preStop": {"httpGet": {"port": 91}}, "postStart": {"tcpSocket": {"port": 93}}}},
            {"name": "world", "image": "hello",
             "ports": [{"name": "http", "containerPort": 90}],
             "livenessProbe": {"httpGet": {"port": "http"}},
             "readinessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}}},
            proxy(json!(["proxy", "sidecar", "--statusPort", "15020"]))
        ]}
    })
}

fn env<'v>(pod: &'v Value, name: &str) -> Option<&'v str> {
    let proxy = find_proxy(pod)?;
    env_value(proxy, name)
}

#[test]
fn istio_hello_probes_are_rewritten_as_istio_does() {
    let mut pod = hello_probes();
    let warnings = rewrite(&mut pod, true);
    assert!(warnings.is_empty(), "{warnings:?}");
    let hello = &pod["spec"]["containers"][0];
    assert_eq!(
        hello["livenessProbe"],
        json!({"httpGet": {"port": 15020, "path": "/app-health/hello/livez"}})
    );
    assert_eq!(
        hello["readinessProbe"],
        json!({"httpGet": {"port": 15020, "path": "/app-health/hello/readyz"}})
    );
    assert_eq!(
        hello["lifecycle"],
        json!({"preStop": {"httpGet": {"path": "/app-lifecycle/hello/prestopz", "port": 15020}},
               "postStart": {"httpGet": {"path": "/app-lifecycle/hello/poststartz", "port": 15020}}})
    );
    let world = &pod["spec"]["containers"][1];
    assert_eq!(
        world["readinessProbe"],
        json!({"exec": {"command": ["cat", "/tmp/healthy"]}})
    );
    // Istio's golden hello-probes.yaml.injected, byte for byte.
    assert_eq!(
        env(&pod, APP_PROBERS_ENV),
        Some(
            r#"{"/app-health/hello/livez":{"httpGet":{"port":80}},"/app-health/hello/readyz":{"httpGet":{"port":3333}},"/app-health/world/livez":{"httpGet":{"port":90}},"/app-lifecycle/hello/poststartz":{"tcpSocket":{"port":93}},"/app-lifecycle/hello/prestopz":{"httpGet":{"port":91}}}"#
        )
    );
    assert_eq!(
        env(&pod, PORT_NAMES_ENV),
        Some(r#"{"/app-health/hello/livez":"http","/app-health/world/livez":"http"}"#)
    );
    // The proxy's own env stays first, and the proxy's probes are its own.
    assert_eq!(find_proxy(&pod).unwrap()["env"][0]["name"], "A");
}

#[test]
fn restore_gives_back_every_probe_exactly() {
    let original = hello_probes();
    let mut pod = original.clone();
    rewrite(&mut pod, true);
    restore(&mut pod);
    // The proxy keeps its env until it is stripped; the application containers are as they were.
    assert_eq!(
        pod["spec"]["containers"][0],
        original["spec"]["containers"][0]
    );
    assert_eq!(
        pod["spec"]["containers"][1],
        original["spec"]["containers"][1]
    );
}

#[test]
fn grpc_probes_carry_their_service_and_timeout_as_go_writes_them() {
    // Istio's TestDumpAppGRPCProbers cases.
    let mut pod = json!({"spec": {"containers": [
        {"name": "foo",
         "livenessProbe": {"grpc": {"port": 1234}},
         "startupProbe": {"grpc": {"port": 1234, "service": "foo"}, "timeoutSeconds": 10},
         "lifecycle": {"preStop": {"httpGet": {"path": "/foo", "port": 1234, "host": "foo", "scheme": "HTTP"}}}},
        proxy(json!(["--statusPort=15020"]))
    ]}});
    let original = pod.clone();
    rewrite(&mut pod, true);
    assert_eq!(
        env(&pod, APP_PROBERS_ENV),
        Some(concat!(
            r#"{"/app-health/foo/livez":{"grpc":{"port":1234,"service":null}},"#,
            r#""/app-health/foo/startupz":{"grpc":{"port":1234,"service":"foo"},"timeoutSeconds":10},"#,
            r#""/app-lifecycle/foo/prestopz":{"httpGet":{"path":"/foo","port":1234,"host":"foo","scheme":"HTTP"}}}"#
        ))
    );
    assert_eq!(
        pod["spec"]["containers"][0]["startupProbe"],
        json!({"httpGet": {"path": "/app-health/foo/startupz", "port": 15020}, "timeoutSeconds": 10})
    );
    assert_eq!(env(&pod, PORT_NAMES_ENV), None);
    restore(&mut pod);
    assert_eq!(
        pod["spec"]["containers"][0],
        original["spec"]["containers"][0]
    );
}

#[test]
fn https_probes_go_to_the_agent_over_http() {
    let mut pod = json!({"spec": {"containers": [
        {"name": "web", "readinessProbe": {"httpGet": {"path": "/ready", "port": 8443, "scheme": "HTTPS",
                                                      "httpHeaders": [{"name": "X", "value": "1"}]}}},
        proxy(json!(["--statusPort", "15020"]))
    ]}});
    let original = pod.clone();
    rewrite(&mut pod, true);
    assert_eq!(
        pod["spec"]["containers"][0]["readinessProbe"]["httpGet"],
        json!({"path": "/app-health/web/readyz", "port": 15020, "scheme": "HTTP",
               "httpHeaders": [{"name": "X", "value": "1"}]})
    );
    assert_eq!(
        env(&pod, APP_PROBERS_ENV),
        Some(
            r#"{"/app-health/web/readyz":{"httpGet":{"path":"/ready","port":8443,"scheme":"HTTPS","httpHeaders":[{"name":"X","value":"1"}]}}}"#
        )
    );
    restore(&mut pod);
    assert_eq!(
        pod["spec"]["containers"][0],
        original["spec"]["containers"][0]
    );
}

#[test]
fn a_tcp_probe_becomes_http_in_its_place() {
    let mut pod = json!({"spec": {"containers": [
        {"name": "db", "livenessProbe": {"periodSeconds": 5, "tcpSocket": {"port": 5432}, "timeoutSeconds": 2}},
        proxy(json!(["--statusPort", "15020"]))
    ]}});
    let original = pod.clone();
    rewrite(&mut pod, true);
    let probe = &pod["spec"]["containers"][0]["livenessProbe"];
    assert_eq!(
        probe,
        &json!({"periodSeconds": 5, "httpGet": {"path": "/app-health/db/livez", "port": 15020}, "timeoutSeconds": 2})
    );
    restore(&mut pod);
    let keys: Vec<&String> = pod["spec"]["containers"][0]["livenessProbe"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys.len(), 3);
    assert_eq!(
        pod["spec"]["containers"][0],
        original["spec"]["containers"][0]
    );
}

#[test]
fn a_port_name_the_container_does_not_declare_is_left_with_a_warning() {
    let mut pod = json!({"spec": {"containers": [
        {"name": "app", "livenessProbe": {"httpGet": {"port": "nope"}}, "readinessProbe": {"httpGet": {"port": 80}}},
        proxy(json!(["--statusPort", "15020"]))
    ]}});
    let warnings = rewrite(&mut pod, true);
    assert_eq!(
        warnings,
        [
            "container \"app\": livenessProbe names port \"nope\", which the container does not \
          declare; left as it is, not rewritten to the proxy's status port"
        ]
    );
    assert_eq!(
        pod["spec"]["containers"][0]["livenessProbe"],
        json!({"httpGet": {"port": "nope"}})
    );
    assert_eq!(
        pod["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"],
        15020
    );
}

#[test]
fn a_probe_already_on_the_status_port_is_left_alone() {
    let mut pod = json!({"spec": {"containers": [
        {"name": "app", "livenessProbe": {"httpGet": {"path": "/mine", "port": 15020}}},
        proxy(json!(["--statusPort", "15020"]))
    ]}});
    let before = pod.clone();
    rewrite(&mut pod, true);
    assert_eq!(pod, before);
}

#[test]
fn the_pods_annotation_wins_over_the_setting() {
    for (annotation, default, rewritten) in [
        (None, true, true),
        (None, false, false),
        (Some("false"), true, false),
        (Some("0"), true, false),
        (Some("F"), true, false),
        (Some("true"), false, true),
        (Some("1"), false, true),
        (Some("yes"), false, false),
        (Some("yes"), true, true),
    ] {
        let mut pod = hello_probes();
        if let Some(value) = annotation {
            pod["metadata"]["annotations"] = json!({REWRITE_ANNOTATION: value});
        }
        rewrite(&mut pod, default);
        assert_eq!(
            env(&pod, APP_PROBERS_ENV).is_some(),
            rewritten,
            "{annotation:?} {default}"
        );
    }
}

#[test]
fn the_status_port_comes_from_the_proxy() {
    let pod = json!({"metadata": {"annotations": {STATUS_PORT_ANNOTATION: "15999"}}});
    for (args, env, port) in [
        (json!(["--statusPort", "15020"]), json!([]), Some(15020)),
        (json!(["--statusPort=15021"]), json!([]), Some(15021)),
        (json!(["-statusPort", " 7 "]), json!([]), Some(7)),
        (json!(["--statusPort", "0"]), json!([]), None),
        (json!(["--statusPort"]), json!([]), None),
        (json!(["--statusPortX", "1"]), json!([]), None),
        (json!(["proxy", "sidecar"]), json!([]), None),
        // Istio ≥ 1.9: the port is in the ProxyConfig, and the pod's annotation wins.
        (
            json!([]),
            json!([{"name": "PROXY_CONFIG", "value": "{\"statusPort\":15020}"}]),
            Some(15999),
        ),
        (
            json!([]),
            json!([{"name": "PROXY_CONFIG", "value": "{\"statusPort\":0}"}]),
            Some(15999),
        ),
    ] {
        let proxy = json!({"name": "istio-proxy", "args": args, "env": env});
        assert_eq!(status_port(&proxy, &pod), port, "{proxy}");
    }
    let proxy = json!({"env": [{"name": "PROXY_CONFIG", "value": "{\"statusPort\":15020}"}]});
    assert_eq!(status_port(&proxy, &json!({})), Some(15020));
    let disabled = json!({"metadata": {"annotations": {STATUS_PORT_ANNOTATION: "0"}}});
    assert_eq!(status_port(&proxy, &disabled), None);
}

#[test]
fn a_proxy_without_a_status_port_takes_no_probe() {
    let mut pod = hello_probes();
    pod["spec"]["containers"][2] = proxy(json!(["proxy", "sidecar"]));
    let before = pod.clone();
    rewrite(&mut pod, true);
    assert_eq!(pod, before);
}

#[test]
fn probers_the_proxy_already_holds_are_kept_unless_a_probe_has_the_path() {
    let mut pod = hello_probes();
    pod["spec"]["containers"][2]["env"] = json!([{"name": APP_PROBERS_ENV,
        "value": r#"{"/app-health/other/livez":{"tcpSocket":{"port":1}},"/app-health/hello/readyz":{"tcpSocket":{"port":2}}}"#}]);
    rewrite(&mut pod, true);
    let probers: Value = serde_json::from_str(env(&pod, APP_PROBERS_ENV).unwrap()).unwrap();
    assert_eq!(
        probers["/app-health/other/livez"],
        json!({"tcpSocket": {"port": 1}})
    );
    assert_eq!(
        probers["/app-health/hello/readyz"],
        json!({"httpGet": {"port": 3333}})
    );
    assert_eq!(
        pod["spec"]["containers"][2]["env"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn native_sidecars_and_init_containers_are_covered() {
    let mut pod = json!({"spec": {
        "initContainers": [
            proxy(json!(["--statusPort", "15020"])),
            {"name": "log-shipper", "restartPolicy": "Always", "startupProbe": {"tcpSocket": {"port": 24224}}}
        ],
        "containers": [{"name": "app", "readinessProbe": {"httpGet": {"port": 8080}}}]
    }});
    let original = pod.clone();
    rewrite(&mut pod, true);
    assert_eq!(
        env(&pod, APP_PROBERS_ENV),
        Some(
            r#"{"/app-health/app/readyz":{"httpGet":{"port":8080}},"/app-health/log-shipper/startupz":{"tcpSocket":{"port":24224}}}"#
        )
    );
    restore(&mut pod);
    assert_eq!(pod["spec"]["containers"], original["spec"]["containers"]);
    assert_eq!(
        pod["spec"]["initContainers"][1],
        original["spec"]["initContainers"][1]
    );
}

#[test]
fn odd_shapes_are_left_alone() {
    let mut pod = json!({"spec": {"containers": [
        {"name": "a", "livenessProbe": "text", "readinessProbe": {"httpGet": "text"},
         "startupProbe": {"httpGet": {"port": 1.5}}, "lifecycle": {"preStop": {"grpc": {"port": 1}}}},
        {"livenessProbe": {"httpGet": {"port": 1}}},
        {"name": "b", "readinessProbe": {"grpc": {"port": "named"}}, "ports": [{"name": "named", "containerPort": 3}]},
        proxy(json!(["--statusPort", "15020"]))
    ]}});
    let before = pod.clone();
    assert!(rewrite(&mut pod, true).is_empty());
    assert_eq!(pod, before);
    let mut broken = json!({"spec": {"containers": [
        {"name": "app", "readinessProbe": {"httpGet": {"path": "/app-health/app/readyz", "port": 15020}}},
        {"name": "istio-proxy", "env": [{"name": APP_PROBERS_ENV, "value": "{not json"}]}
    ]}});
    let before = broken.clone();
    restore(&mut broken);
    assert_eq!(broken, before);
}

fn app_pod(containers: Vec<Value>) -> Value {
    json!({"metadata": {"name": "p", "labels": {"app": "p"}}, "spec": {"containers": containers}})
}

#[test]
fn the_seed_template_has_no_agent_so_probes_stay() {
    let injector = Injector::new(Config::default()).unwrap();
    let mut pod = app_pod(vec![
        json!({"name": "app", "livenessProbe": {"httpGet": {"port": 80}}}),
    ]);
    injector.inject(&mut pod, Some("default")).unwrap();
    assert_eq!(
        pod["spec"]["containers"][0]["livenessProbe"],
        json!({"httpGet": {"port": 80}})
    );
}

#[test]
fn inject_rewrites_reinject_keeps_and_uninject_restores() {
    let injector = injector_with_status_port(|_| {});
    let original = app_pod(vec![json!({"name": "app",
        "ports": [{"name": "http", "containerPort": 8080}],
        "livenessProbe": {"httpGet": {"port": "http", "path": "/healthz"}, "periodSeconds": 3}})]);
    let mut pod = original.clone();
    injector.inject(&mut pod, Some("default")).unwrap();
    assert_eq!(
        pod["spec"]["containers"][0]["livenessProbe"],
        json!({"httpGet": {"port": 15020, "path": "/app-health/app/livez"}, "periodSeconds": 3})
    );
    assert_eq!(
        env(&pod, APP_PROBERS_ENV),
        Some(r#"{"/app-health/app/livez":{"httpGet":{"path":"/healthz","port":8080}}}"#)
    );
    let mut again = pod.clone();
    let outcome = injector.inject(&mut again, Some("default")).unwrap();
    assert!(
        matches!(outcome, Outcome::Injected { changed: false, .. }),
        "{outcome:?}"
    );
    assert_eq!(again, pod);
    uninject(&mut again).unwrap();
    assert_eq!(again, original);
}

#[test]
fn the_status_port_annotation_moves_the_probes() {
    let injector = injector_with_status_port(|_| {});
    let mut pod = app_pod(vec![
        json!({"name": "app", "readinessProbe": {"httpGet": {"port": 80}}}),
    ]);
    pod["metadata"]["annotations"] = json!({STATUS_PORT_ANNOTATION: "15555"});
    injector.inject(&mut pod, Some("default")).unwrap();
    assert_eq!(
        pod["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"],
        15555
    );
    // Status port 0 is Istio's "no agent": nothing is rewritten.
    let mut pod = app_pod(vec![
        json!({"name": "app", "readinessProbe": {"httpGet": {"port": 80}}}),
    ]);
    pod["metadata"]["annotations"] = json!({STATUS_PORT_ANNOTATION: "0"});
    injector.inject(&mut pod, Some("default")).unwrap();
    assert_eq!(
        pod["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"],
        80
    );
}

#[test]
fn reinjecting_with_rewriting_off_gives_the_probes_back() {
    let original = app_pod(vec![
        json!({"name": "app", "readinessProbe": {"tcpSocket": {"port": 80}}}),
    ]);
    let mut pod = original.clone();
    injector_with_status_port(|_| {})
        .inject(&mut pod, Some("default"))
        .unwrap();
    assert_eq!(
        pod["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"],
        15020
    );
    let off = injector_with_status_port(|c| c.injector.rewrite_app_http_probe = false);
    let outcome = off.inject(&mut pod, Some("default")).unwrap();
    assert!(
        matches!(outcome, Outcome::Injected { changed: true, .. }),
        "{outcome:?}"
    );
    assert_eq!(
        pod["spec"]["containers"][0],
        original["spec"]["containers"][0]
    );
    assert_eq!(env(&pod, APP_PROBERS_ENV), None);
}

#[test]
fn the_setting_is_read_from_policy_settings() {
    let config = Config::from_settings(&json!({"rewriteAppHTTPProbe": false})).unwrap();
    assert!(!config.injector.rewrite_app_http_probe);
    assert!(Config::default().injector.rewrite_app_http_probe);
    let err = Config::from_settings(&json!({"rewriteAppHTTPProbe": "no"})).unwrap_err();
    assert!(err.to_string().contains("rewriteAppHTTPProbe"), "{err}");
}

fn arbitrary_check(ports: &'static [&'static str]) -> impl Strategy<Value = Option<Value>> {
    let port = prop_oneof![
        (1u16..100).prop_map(|p| json!(p)),
        Just(json!(15020)),
        prop::sample::select(ports).prop_map(|p| json!(p)),
    ];
    let action = prop_oneof![
        (port.clone(), prop::option::of("/[a-z]{0,5}"), any::<bool>()).prop_map(
            |(port, path, https)| {
                let mut get = json!({"port": port});
                if let Some(path) = path {
                    get["path"] = json!(path);
                }
                if https {
                    get["scheme"] = json!("HTTPS");
                }
                json!({"httpGet": get})
            }
        ),
        port.clone()
            .prop_map(|port| json!({"tcpSocket": {"port": port, "host": "h"}})),
        (1u16..100, prop::option::of("[a-z]{1,4}")).prop_map(|(port, service)| {
            match service {
                Some(s) => json!({"grpc": {"port": port, "service": s}}),
                None => json!({"grpc": {"port": port}}),
            }
        }),
        Just(json!({"exec": {"command": ["true"]}})),
    ];
    prop::option::of(
        (action, prop::option::of(0u8..5)).prop_map(|(mut action, timeout)| {
            if let Some(t) = timeout {
                action["timeoutSeconds"] = json!(t);
            }
            action
        }),
    )
}

/// Pods with probes and hooks of every kind, on numbered, named and undeclared ports.
pub(crate) fn pod_with_probes() -> impl Strategy<Value = Value> {
    const PORTS: &[&str] = &["http", "grpc-web", "nope"];
    let container = (
        arbitrary_check(PORTS),
        arbitrary_check(PORTS),
        arbitrary_check(PORTS),
        arbitrary_check(PORTS),
        any::<bool>(),
    )
        .prop_map(|(ready, live, startup, hook, declare)| {
            let mut c = json!({"image": "app"});
            if declare {
                c["ports"] = json!([{"name": "http", "containerPort": 8080},
                                    {"name": "grpc-web", "containerPort": 9090}]);
            }
            for (field, check) in [
                ("readinessProbe", ready),
                ("livenessProbe", live),
                ("startupProbe", startup),
            ] {
                if let Some(check) = check {
                    c[field] = check;
                }
            }
            if let Some(mut hook) = hook {
                if let Some(map) = hook.as_object_mut() {
                    map.remove("timeoutSeconds");
                    map.remove("grpc");
                }
                if !hook.as_object().is_some_and(|m| m.is_empty()) {
                    c["lifecycle"] = json!({"preStop": hook});
                }
            }
            c
        });
    prop::collection::vec(container, 1..4).prop_map(|containers| {
        let containers = containers
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                c["name"] = json!(format!("c{i}"));
                c
            })
            .collect();
        app_pod(containers)
    })
}

proptest! {
    #[test]
    fn rewritten_pods_reinject_to_themselves_and_uninject_to_the_original(
        pod in pod_with_probes(),
        native in any::<bool>(),
        hold in any::<bool>(),
    ) {
        let injector = injector_with_status_port(|c| {
            c.injector.native_sidecars = native;
            c.mesh.default_config.hold_application_until_proxy_starts = hold;
        });
        crate::injector::roundtrip::check(&injector, &pod)?;
    }
}
