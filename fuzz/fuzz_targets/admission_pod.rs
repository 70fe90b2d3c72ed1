//! Mostly-valid admissions: a pod shape built by `arbitrary` (names, images, labels, the
//! annotations the injector reads, ports, a status annotation that may be forged), so the
//! fuzzer reaches decision, render and merge. Properties: a verdict for every pod; an injected
//! pod injected again changes nothing; no application container is ever removed.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use sidecar_injector::admission::{self, NoCluster, Verdict};
use sidecar_injector::settings::PolicySettings;

const ANNOTATIONS: &[&str] = &[
    "sidecar.istio.io/inject",
    "sidecar.istio.io/status",
    "sidecar.istio.io/proxyImage",
    "sidecar.istio.io/interceptionMode",
    "traffic.sidecar.istio.io/includeOutboundIPRanges",
    "traffic.sidecar.istio.io/excludeInboundPorts",
    "sidecar.istio.io/proxyCPU",
    "status.sidecar.istio.io/port",
];
const NAMES: &[&str] = &["app", "istio-proxy", "istio-init", "sleep", "istio-envoy", "istio-certs", ""];

#[derive(Debug, Arbitrary)]
struct Container {
    name: u8,
    image: String,
    ports: Vec<(u16, bool)>,
}

#[derive(Debug, Arbitrary)]
struct Pod {
    name: String,
    namespace: Option<u8>,
    labels: Vec<(String, String)>,
    annotations: Vec<(u8, String)>,
    containers: Vec<Container>,
    init_containers: Vec<u8>,
    volumes: Vec<u8>,
    host_network: bool,
    status: Option<StatusShape>,
    template: Option<String>,
}

#[derive(Debug, Arbitrary)]
struct StatusShape {
    containers: Vec<u8>,
    init_containers: Vec<u8>,
    volumes: Vec<u8>,
    version: String,
}

fn name(i: u8) -> &'static str {
    NAMES[usize::from(i) % NAMES.len()]
}

fn build(pod: &Pod) -> Value {
    let mut annotations = Map::new();
    for (key, value) in &pod.annotations {
        annotations.insert(ANNOTATIONS[usize::from(*key) % ANNOTATIONS.len()].into(), json!(value));
    }
    if let Some(s) = &pod.status {
        let list = |v: &Vec<u8>| v.iter().map(|i| name(*i)).collect::<Vec<_>>();
        annotations.insert(
            "sidecar.istio.io/status".into(),
            json!(json!({"version": s.version, "containers": list(&s.containers),
                "initContainers": list(&s.init_containers), "volumes": list(&s.volumes),
                "imagePullSecrets": null}).to_string()),
        );
    }
    let containers: Vec<Value> = pod
        .containers
        .iter()
        .map(|c| {
            let ports: Vec<Value> = c
                .ports
                .iter()
                .map(|(p, udp)| json!({"containerPort": p, "protocol": if *udp {"UDP"} else {"TCP"}}))
                .collect();
            json!({"name": name(c.name), "image": c.image, "ports": ports})
        })
        .collect();
    let init: Vec<Value> = pod.init_containers.iter().map(|i| json!({"name": name(*i), "image": "x"})).collect();
    let volumes: Vec<Value> = pod.volumes.iter().map(|i| json!({"name": name(*i), "emptyDir": {}})).collect();
    let labels: Map<String, Value> = pod.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let mut metadata = json!({"name": pod.name, "labels": labels, "annotations": annotations});
    if let Some(ns) = pod.namespace {
        metadata["namespace"] = json!(["default", "kube-system", "", "istio-system"][usize::from(ns) % 4]);
    }
    json!({
        "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "default", "operation": "CREATE",
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": containers, "initContainers": init, "volumes": volumes,
                     "hostNetwork": pod.host_network}}
    })
}

fn container_names(pod: &Value, list: &str) -> Vec<String> {
    pod["spec"][list]
        .as_array()
        .map(|l| l.iter().filter_map(|c| c["name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fuzz_target!(|pod: Pod| {
    let settings = match &pod.template {
        Some(t) => json!({"requirements": "off", "template": t}),
        None => json!({"requirements": "off"}),
    };
    let Ok(parsed) = PolicySettings::validate(&settings) else {
        return;
    };
    let mut request = build(&pod);
    let original = request["object"].clone();
    let verdict = admission::review(parsed.clone(), &NoCluster, &mut request);
    let Verdict::Mutate { object, .. } = verdict else {
        return;
    };
    // No application container is lost: every container the pod had is still there. One named
    // like an injected container is an override, merged into it, which may stand in either list
    // (the built-in template's `istio-init` is an init container), unless a status annotation
    // says it was injected: then it is stripped, and the template may not make it again.
    let after = container_names(&object, "containers");
    let after_init = container_names(&object, "initContainers");
    let has_status = original["metadata"]["annotations"]
        .get("sidecar.istio.io/status")
        .is_some();
    for c in container_names(&original, "containers") {
        let kept = if c == "istio-proxy" || c == "istio-init" {
            has_status || after.contains(&c) || after_init.contains(&c)
        } else {
            after.contains(&c)
        };
        assert!(kept, "container {c:?} was removed: {after:?}, init {after_init:?}");
    }
    // Injecting the injected pod again changes nothing.
    let mut again = request.clone();
    again["object"] = object.clone();
    match admission::review(parsed, &NoCluster, &mut again) {
        Verdict::Mutate { object: twice, .. } => assert_eq!(twice, object, "not idempotent"),
        Verdict::Accept { .. } => {}
        Verdict::Reject { message, .. } => panic!("re-injection rejected: {message}"),
    }
});
