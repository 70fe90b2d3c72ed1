//! Tests of the parent module, compiled only under #[cfg(test)].

use std::cell::RefCell;
use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Value, json};

use super::*;

/// A cluster answering from maps, recording every call.
#[derive(Default)]
struct FakeCluster {
    services: BTreeMap<String, Result<Vec<Value>, String>>,
    config_maps: BTreeMap<String, Value>,
    calls: RefCell<Vec<String>>,
}

impl Cluster for FakeCluster {
    fn services(&self, namespace: &str) -> Result<Vec<Value>, ClusterError> {
        self.calls
            .borrow_mut()
            .push(format!("services {namespace}"));
        self.services
            .get(namespace)
            .cloned()
            .unwrap_or_else(|| Ok(Vec::new()))
            .map_err(ClusterError)
    }

    fn config_map(&self, config_map: &ConfigMapRef) -> Result<Value, ClusterError> {
        self.calls
            .borrow_mut()
            .push(format!("configmap {config_map}"));
        self.config_maps
            .get(&config_map.to_string())
            .cloned()
            .ok_or_else(|| ClusterError::from("not found"))
    }
}

fn settings(value: Value) -> PolicySettings {
    PolicySettings::from_value(&value).unwrap()
}

fn request(kind: &str, operation: &str, object: Value) -> Value {
    json!({
        "uid": "u-1", "kind": {"group": "", "version": "v1", "kind": kind},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "default", "operation": operation, "userInfo": {"username": "me"},
        "object": object
    })
}

fn pod() -> Value {
    json!({"metadata": {"generateName": "sleep-", "labels": {"app": "sleep"}},
           "spec": {"containers": [{"name": "sleep", "image": "tutum/curl"}]}})
}

fn sleep_service() -> Value {
    json!({"metadata": {"name": "sleep", "namespace": "default"},
           "spec": {"selector": {"app": "sleep"}, "ports": [{"name": "http", "port": 80}]}})
}

fn with_services(services: Vec<Value>) -> FakeCluster {
    let mut cluster = FakeCluster::default();
    cluster.services.insert("default".into(), Ok(services));
    cluster
}

#[test]
fn pod_create_is_mutated() {
    let cluster = with_services(vec![sleep_service()]);
    let verdict = review(
        settings(json!({})),
        &cluster,
        &mut request("Pod", "CREATE", pod()),
    );
    let Verdict::Mutate { object, warnings } = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(object["spec"]["containers"][1]["name"], "istio-proxy");
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn other_operations_and_kinds_are_accepted_untouched() {
    let cluster = FakeCluster::default();
    for op in ["UPDATE", "DELETE", "CONNECT"] {
        let verdict = review(
            settings(json!({})),
            &cluster,
            &mut request("Pod", op, pod()),
        );
        assert_eq!(verdict, Verdict::Accept { warnings: vec![] });
    }
    let verdict = review(
        settings(json!({})),
        &cluster,
        &mut request("Deployment", "CREATE", json!({})),
    );
    assert_eq!(verdict, Verdict::Accept { warnings: vec![] });
    assert!(cluster.calls.borrow().is_empty());
}

#[test]
fn missing_or_odd_objects_are_rejected_clearly() {
    let cluster = FakeCluster::default();
    for object in [Value::Null, json!("pod"), json!([1])] {
        let verdict = review(
            settings(json!({})),
            &cluster,
            &mut request("Pod", "CREATE", object),
        );
        assert!(
            matches!(verdict, Verdict::Reject { code: 400, .. }),
            "{verdict:?}"
        );
    }
    let mut no_object = request("Pod", "CREATE", Value::Null);
    no_object.as_object_mut().unwrap().remove("object");
    assert!(matches!(
        review(settings(json!({})), &cluster, &mut no_object),
        Verdict::Reject { .. }
    ));
    assert!(matches!(
        review(settings(json!({})), &cluster, &mut json!(7)),
        Verdict::Reject { .. }
    ));
    let verdict = review(
        settings(json!({})),
        &cluster,
        &mut request("Pod", "CREATE", json!({"metadata": {"name": "x"}})),
    );
    let Verdict::Reject { message, .. } = verdict else {
        panic!()
    };
    assert!(
        message.contains("pod x") && message.contains("no spec"),
        "{message}"
    );
}

#[test]
fn the_request_namespace_reaches_the_ignored_namespace_rule() {
    let mut r = request("Pod", "CREATE", pod());
    r["namespace"] = json!("kube-system");
    assert!(matches!(
        review(settings(json!({})), &FakeCluster::default(), &mut r),
        Verdict::Accept { .. }
    ));
}

#[test]
fn requirements_warn_by_default_and_reject_in_enforce() {
    let cluster = with_services(vec![]);
    let verdict = review(
        settings(json!({})),
        &cluster,
        &mut request("Pod", "CREATE", pod()),
    );
    let Verdict::Mutate { warnings, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert!(
        warnings.iter().any(|w| w.contains("no Service")),
        "{warnings:?}"
    );
    let verdict = review(
        settings(json!({"requirements": "enforce"})),
        &cluster,
        &mut request("Pod", "CREATE", pod()),
    );
    let Verdict::Reject { message, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert!(
        message.contains("pod sleep-*") && message.contains("no Service"),
        "{message}"
    );
}

#[test]
fn requirements_off_makes_no_service_lookup() {
    let cluster = with_services(vec![]);
    let verdict = review(
        settings(json!({"requirements": "off"})),
        &cluster,
        &mut request("Pod", "CREATE", pod()),
    );
    assert!(matches!(verdict, Verdict::Mutate { .. }));
    assert!(cluster.calls.borrow().is_empty());
}

#[test]
fn a_failed_service_lookup_skips_the_check_with_a_warning() {
    let mut cluster = FakeCluster::default();
    cluster.services.insert(
        "default".into(),
        Err("Policy has not been granted access".into()),
    );
    let verdict = review(
        settings(json!({"requirements": "enforce"})),
        &cluster,
        &mut request("Pod", "CREATE", pod()),
    );
    let Verdict::Mutate { warnings, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert!(
        warnings.iter().any(|w| w.contains("not checked")),
        "{warnings:?}"
    );
}

#[test]
fn service_port_names_are_checked() {
    let mut bad = sleep_service();
    bad["spec"]["ports"][0]["name"] = json!("http2foo");
    let cluster = FakeCluster::default();
    let verdict = review(
        settings(json!({})),
        &cluster,
        &mut request("Service", "CREATE", bad.clone()),
    );
    let Verdict::Accept { warnings } = verdict else {
        panic!()
    };
    assert!(warnings[0].contains("http2foo"), "{warnings:?}");
    let verdict = review(
        settings(json!({"requirements": "enforce"})),
        &cluster,
        &mut request("Service", "UPDATE", bad),
    );
    assert!(matches!(verdict, Verdict::Reject { .. }));
    let verdict = review(
        settings(json!({"requirements": "enforce"})),
        &cluster,
        &mut request("Service", "CREATE", sleep_service()),
    );
    assert_eq!(verdict, Verdict::Accept { warnings: vec![] });
}

fn config_maps(cluster: &mut FakeCluster, template: &str) {
    cluster.config_maps.insert(
        "istio-system/istio-sidecar-injector".into(),
        json!({"data": {"config": format!("policy: enabled\ntemplate: |\n  {}\n", template.replace('\n', "\n  "))}}),
    );
    cluster.config_maps.insert(
        "istio-system/istio".into(),
        json!({"data": {"mesh": "defaultConfig:\n  binaryPath: /bin/envoy\n"}}),
    );
}

#[test]
fn config_is_read_from_the_config_maps() {
    let mut cluster = with_services(vec![sleep_service()]);
    config_maps(
        &mut cluster,
        "containers:\n- name: from-cluster\n  args: [{{ ProxyConfig.binaryPath }}]",
    );
    let verdict = review(
        settings(json!({"configMaps": {}})),
        &cluster,
        &mut request("Pod", "CREATE", pod()),
    );
    let Verdict::Mutate { object, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(object["spec"]["containers"][1]["name"], "from-cluster");
    assert_eq!(object["spec"]["containers"][1]["args"][0], "/bin/envoy");
    assert_eq!(
        *cluster.calls.borrow(),
        [
            "configmap istio-system/istio-sidecar-injector",
            "configmap istio-system/istio",
            "services default"
        ]
    );
}

#[test]
fn a_missing_config_map_rejects_or_falls_back() {
    let cluster = FakeCluster::default();
    let verdict = review(
        settings(json!({"configMaps": {}, "requirements": "off"})),
        &cluster,
        &mut request("Pod", "CREATE", pod()),
    );
    let Verdict::Reject { message, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert!(
        message.contains("istio-system/istio-sidecar-injector") && message.contains("not found"),
        "{message}"
    );
    let verdict = review(
        settings(json!({"configMaps": {"onError": "embedded"}, "requirements": "off"})),
        &cluster,
        &mut request("Pod", "CREATE", pod()),
    );
    let Verdict::Mutate { object, warnings } = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(object["spec"]["containers"][1]["name"], "istio-proxy");
    assert!(warnings[0].contains("embedded"), "{warnings:?}");
}

#[test]
fn an_invalid_config_map_names_the_key() {
    let mut cluster = FakeCluster::default();
    config_maps(&mut cluster, "containers: {{ nope");
    let verdict = review(
        settings(json!({"configMaps": {}})),
        &cluster,
        &mut request("Pod", "CREATE", pod()),
    );
    let Verdict::Reject { message, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert!(
        message.contains("ConfigMap istio-system/istio-sidecar-injector key `config`"),
        "{message}"
    );
    cluster
        .config_maps
        .insert("istio-system/istio".into(), json!({"data": {}}));
    config_maps(&mut cluster, "containers: []");
    cluster
        .config_maps
        .insert("istio-system/istio".into(), json!({"data": {}}));
    let verdict = review(
        settings(json!({"configMaps": {}})),
        &cluster,
        &mut request("Pod", "CREATE", pod()),
    );
    let Verdict::Reject { message, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert!(message.contains("has no `mesh` key"), "{message}");
}

#[test]
fn review_response_patch_applied_to_the_object_gives_the_mutated_pod() {
    let cluster = with_services(vec![sleep_service()]);
    let review_json = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                             "request": request("Pod", "CREATE", pod())});
    let response = respond_to_review(Ok(settings(json!({}))), &cluster, &review_json);
    assert_eq!(response["response"]["uid"], "u-1");
    assert_eq!(response["response"]["allowed"], true);
    assert_eq!(response["response"]["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(response["response"]["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut patched = pod();
    json_patch::patch(&mut patched, &patch).unwrap();
    let Verdict::Mutate { object, .. } = review(
        settings(json!({})),
        &cluster,
        &mut request("Pod", "CREATE", pod()),
    ) else {
        panic!()
    };
    assert_eq!(patched, object);
}

#[test]
fn review_without_request_or_settings_is_refused() {
    let response = respond_to_review(Ok(settings(json!({}))), &NoCluster, &json!({}));
    assert_eq!(response["response"]["allowed"], false);
    let response = respond_to_review(
        PolicySettings::from_payload(&json!({"policy": "sometimes"})),
        &NoCluster,
        &json!({"request": request("Pod", "CREATE", pod())}),
    );
    assert!(
        response["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("settings: field `policy`")
    );
}

#[test]
fn a_pod_the_rules_skip_is_accepted_without_compiling_the_template() {
    // validate_settings refuses this template; reviewing directly shows it is never compiled
    // for a pod that is not injected, and still refused for one that is.
    let broken =
        json!({"template": "containers:\n- name: {{ ObjectMeta.name \n", "requirements": "off"});
    let cluster = FakeCluster::default();
    let mut opted_out = pod();
    opted_out["metadata"]["annotations"] = json!({"sidecar.istio.io/inject": "false"});
    let verdict = review(
        settings(broken.clone()),
        &cluster,
        &mut request("Pod", "CREATE", opted_out),
    );
    assert!(matches!(verdict, Verdict::Accept { .. }), "{verdict:?}");
    let verdict = review(
        settings(broken),
        &cluster,
        &mut request("Pod", "CREATE", pod()),
    );
    let Verdict::Reject { message, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert!(message.contains("settings: field `template`"), "{message}");
}

#[test]
fn an_object_cluster_answers_from_its_objects_by_kind_and_namespace() {
    let service = |name: &str, namespace: Option<&str>| {
        let mut s = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}});
        if let Some(ns) = namespace {
            s["metadata"]["namespace"] = json!(ns);
        }
        s
    };
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio", "namespace": "istio-system"}, "data": {"mesh": "{}"}});
    let documents = [
        service("anywhere", None),
        json!({"apiVersion": "v1", "kind": "List", "items": [
            service("b", Some("default")),
            {"kind": "List", "items": [service("c", Some("other"))]},
            config_map.clone(),
        ]}),
        json!({"kind": "Deployment", "metadata": {"name": "b", "namespace": "default"}}),
        service("blank", Some("")),
    ];
    let documents: Vec<(usize, Value)> = documents.into_iter().enumerate().collect();
    let cluster = ObjectCluster::new(&documents);
    let names = |ns: &str| -> Vec<String> {
        cluster
            .services(ns)
            .unwrap()
            .iter()
            .map(|s| s["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("default"), ["anywhere", "b", "blank"]);
    assert_eq!(names("other"), ["anywhere", "c", "blank"]);
    assert_eq!(names("nowhere"), ["anywhere", "blank"]);
    let found = cluster
        .config_map(&"istio-system/istio".parse().unwrap())
        .unwrap();
    assert_eq!(found, config_map);
    let missing = cluster
        .config_map(&"istio-system/istio-sidecar-injector".parse().unwrap())
        .unwrap_err();
    assert_eq!(
        missing.to_string(),
        r#"configmaps "istio-sidecar-injector" not found"#
    );
    assert!(
        ObjectCluster::default()
            .services("default")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn an_unreadable_review_is_rejected_with_the_parser_message_and_no_uid() {
    let error = serde_json::from_str::<Value>("{not json").unwrap_err();
    let response = unreadable_review(&error);
    assert_eq!(response["kind"], "AdmissionReview");
    assert_eq!(response["response"]["uid"], "");
    assert_eq!(response["response"]["allowed"], false);
    assert_eq!(response["response"]["status"]["code"], 400);
    let message = response["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("the AdmissionReview is not valid JSON: "),
        "{message}"
    );
    assert!(message.contains("line 1"), "{message}");
}
