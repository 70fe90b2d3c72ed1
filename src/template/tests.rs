//! Tests of the parent module, compiled only under #[cfg(test)].

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::config::{BUILTIN_TEMPLATE, MeshConfig};

/// The seed's example template ("template" section), written in upon syntax.
const SEED_TEMPLATE: &str = r#"containers:
- name: istio-proxy
  image: istio.io/proxy:0.5.0
  args:
  - proxy
  - sidecar
  - --configPath
  - {{ ProxyConfig.configPath }}
  - --binaryPath
  - {{ ProxyConfig.binaryPath }}
  - --serviceCluster
  {% if ObjectMeta.labels?.app -%}
  - {{ ObjectMeta.labels.app }}
  {% else -%}
  - "istio-proxy"
  {% endif -%}
"#;

/// The seed's expansion of that template over the sleep pod.
const SEED_EXPANSION: &str = r#"containers:
- name: istio-proxy
  image: istio.io/proxy:0.5.0
  args:
  - proxy
  - sidecar
  - --configPath
  - /etc/istio/proxy
  - --binaryPath
  - /usr/local/bin/envoy
  - --serviceCluster
  - sleep
"#;

/// The pod template of the Deployment in samples/sleep/sleep.yaml.
fn sleep_pod() -> Value {
    let text = include_str!("../../samples/sleep/sleep.yaml");
    for document in serde_yaml::Deserializer::from_str(text) {
        let doc = Value::deserialize(document).unwrap();
        if doc["kind"] == "Deployment" {
            return doc["spec"]["template"].clone();
        }
    }
    panic!("no Deployment in samples/sleep/sleep.yaml")
}

use serde::Deserialize;

fn render(template: &str, pod: &Value) -> Result<Value, TemplateError> {
    let t = SidecarTemplate::compile(template)?;
    t.render_tree(&TemplateData::new(
        pod,
        Some("default"),
        &MeshData::new(&MeshConfig::default()),
    ))
}

#[test]
fn seed_template_expands_to_the_seed_expansion() {
    let expected: Value = serde_yaml::from_str(SEED_EXPANSION).unwrap();
    assert_eq!(render(SEED_TEMPLATE, &sleep_pod()).unwrap(), expected);
}

#[test]
fn seed_template_uses_istio_proxy_without_app_label() {
    let mut pod = sleep_pod();
    pod["metadata"]["labels"] = json!({"tier": "x"});
    let tree = render(SEED_TEMPLATE, &pod).unwrap();
    let args = tree["containers"][0]["args"].as_array().unwrap();
    assert_eq!(args[args.len() - 2], "--serviceCluster");
    assert_eq!(args[args.len() - 1], "istio-proxy");
    let mut no_labels = sleep_pod();
    no_labels["metadata"] = json!({});
    let tree = render(SEED_TEMPLATE, &no_labels).unwrap();
    assert_eq!(tree["containers"][0]["args"][7], "istio-proxy");
}

#[test]
fn builtin_template_renders_for_the_sleep_pod() {
    let t = SidecarTemplate::compile(BUILTIN_TEMPLATE).unwrap();
    let spec = t
        .render(&TemplateData::new(
            &sleep_pod(),
            Some("default"),
            &MeshData::new(&MeshConfig::default()),
        ))
        .unwrap();
    let names = |cs: &[k8s_openapi::api::core::v1::Container]| {
        cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>()
    };
    assert_eq!(names(&spec.init_containers), ["istio-init"]);
    assert_eq!(names(&spec.containers), ["istio-proxy"]);
    let args = spec.containers[0].args.clone().unwrap();
    let after = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].clone();
    assert_eq!(after("--serviceCluster"), "sleep");
    assert_eq!(after("--configPath"), "/etc/istio/proxy");
    assert_eq!(after("--drainDuration"), "2s");
    assert_eq!(after("--proxyAdminPort"), "15000");
    assert!(!args.contains(&"--zipkinAddress".to_string()));
    let volumes: Vec<_> = spec.volumes.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(volumes, ["istio-envoy", "istio-certs"]);
    assert_eq!(
        spec.volumes[1]
            .secret
            .as_ref()
            .unwrap()
            .secret_name
            .as_deref(),
        Some("istio.default")
    );
    let init_args = spec.init_containers[0].args.clone().unwrap();
    assert_eq!(init_args[..4], ["-p", "15001", "-u", "1337"]);
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let err =
        SidecarTemplate::compile("containers:\n- name: {{ ObjectMeta.name | }}\n").unwrap_err();
    match err {
        TemplateError::Syntax { line, column, .. } => {
            assert_eq!(line, 2);
            assert!(column > 1, "{column}");
        }
        other => panic!("{other:?}"),
    }
    let err = SidecarTemplate::compile("a: 1\nb: {% if x %}\n").unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn render_errors_carry_line_and_column() {
    let err = render(
        "containers:\n- name: {{ ObjectMeta.nope.deeper }}\n",
        &sleep_pod(),
    )
    .unwrap_err();
    match err {
        TemplateError::Render { line, .. } => assert_eq!(line, 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_labels_and_annotations_are_easy_to_test() {
    let t = "containers:\n- name: p\n  args:\n  - {{ ObjectMeta.labels?.nope | valueOrDefault: \"none\" }}\n  - {{ ObjectMeta | annotation: \"sidecar.istio.io/x\", \"d\" }}\n  - {% if ObjectMeta.annotations?.x %}yes{% else %}no{% endif %}\n";
    let tree = render(t, &json!({"spec": {"containers": []}})).unwrap();
    assert_eq!(tree["containers"][0]["args"], json!(["none", "d", "no"]));
}

#[test]
fn namespace_from_the_request_fills_object_meta() {
    let t = "containers:\n- name: {{ ObjectMeta.namespace }}\n";
    assert_eq!(
        render(t, &sleep_pod()).unwrap()["containers"][0]["name"],
        "default"
    );
}

#[test]
fn maps_insert_as_structure_and_to_json_as_text() {
    let t = "containers:\n- name: p\n  env:\n  - name: LABELS\n    value: {{ ObjectMeta.labels | toJson }}\n  resources:\n    requests: {{ Spec.extra | toYaml }}\n";
    let pod = json!({"metadata": {"labels": {"app": "a: b"}}, "spec": {"extra": {"cpu": "1"}}});
    let tree = render(t, &pod).unwrap();
    assert_eq!(
        tree["containers"][0]["env"][0]["value"],
        r#"{"app":"a: b"}"#
    );
    assert_eq!(
        tree["containers"][0]["resources"]["requests"],
        json!({"cpu": "1"})
    );
    let err = render("containers:\n- name: p-{{ Spec.extra }}\n", &pod).unwrap_err();
    assert!(matches!(err, TemplateError::Interpolation(_)), "{err:?}");
}

#[test]
fn the_reserved_marker_is_refused() {
    assert_eq!(
        SidecarTemplate::compile("a: sidecarinjectorvalue0x").unwrap_err(),
        TemplateError::Reserved
    );
}

#[test]
fn version_is_the_sha256_of_the_template() {
    let t = SidecarTemplate::compile("").unwrap();
    assert_eq!(
        t.version(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

/// A template that interpolates pod values in plain, quoted, list, flow and block positions.
const SAFETY_TEMPLATE: &str = r#"containers:
- name: p
  image: {{ ObjectMeta.annotations.a }}
  workingDir: "{{ ObjectMeta.labels.l }}"
  args:
  - {{ ObjectMeta.labels.l }}
  - "{{ ObjectMeta.annotations.a }}"
  - '{{ ObjectMeta.annotations.a }}'
  - --flag={{ ObjectMeta.labels.l }}
  - {{ ObjectMeta.name }}
  command: [{{ ObjectMeta.annotations.a }}, "x"]
  env:
  - name: PLAIN
    value: {{ ObjectMeta.annotations.a }}
  - name: BLOCK
    value: |
      {{ ObjectMeta.annotations.a }}
volumes:
- name: v
  emptyDir: {}
"#;

fn adversarial() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("\n".to_string()),
        Just(": ".to_string()),
        Just(" #".to_string()),
        Just("- ".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("|".to_string()),
        Just(">".to_string()),
        Just("&anchor".to_string()),
        Just("*alias".to_string()),
        Just("!tag".to_string()),
        Just("---".to_string()),
        Just("...".to_string()),
        Just("\t".to_string()),
        Just("\u{2028}".to_string()),
        Just("\u{2029}".to_string()),
        Just("\u{85}".to_string()),
        Just("\r\n".to_string()),
        Just("\\".to_string()),
        Just("%".to_string()),
        Just("@".to_string()),
        Just("`".to_string()),
        Just(",".to_string()),
        Just("? ".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("0x1F".to_string()),
        Just("~".to_string()),
        Just("{{ x }}".to_string()),
        Just("sidecarinjectorvalue0x".to_string()),
        Just("containers:\n- name: evil".to_string()),
        "[a-z0-9 ]{0,8}",
        any::<String>(),
        "x{500,3000}",
    ];
    prop::collection::vec(fragment, 0..8).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A pod value renders as exactly itself in every position, or the render fails; it never adds
    /// keys, list items, containers or documents.
    #[test]
    fn pod_values_never_change_the_structure(a in adversarial(), l in adversarial(), name in adversarial()) {
        let pod = json!({
            "metadata": {"name": name, "annotations": {"a": a}, "labels": {"l": l}},
            "spec": {"containers": []}
        });
        let template = SidecarTemplate::compile(SAFETY_TEMPLATE).unwrap();
        let mesh = MeshData::new(&MeshConfig::default());
        let data = TemplateData::new(&pod, None, &mesh);
        let spec = match template.render(&data) {
            Ok(spec) => spec,
            Err(e) => { prop_assert!(false, "render failed: {e}"); unreachable!() }
        };
        prop_assert_eq!(spec.containers.len(), 1);
        prop_assert!(spec.init_containers.is_empty());
        prop_assert!(spec.image_pull_secrets.is_empty());
        prop_assert_eq!(spec.volumes.len(), 1);
        let c = &spec.containers[0];
        prop_assert_eq!(&c.name, "p");
        prop_assert_eq!(c.image.as_deref(), Some(a.as_str()));
        prop_assert_eq!(c.working_dir.as_deref(), Some(l.as_str()));
        let args = c.args.clone().unwrap_or_default();
        prop_assert_eq!(args, vec![l.clone(), a.clone(), a.clone(), format!("--flag={l}"), name.clone()]);
        prop_assert_eq!(c.command.clone().unwrap_or_default(), vec![a.clone(), "x".to_string()]);
        let env = c.env.clone().unwrap_or_default();
        prop_assert_eq!(env.len(), 2);
        prop_assert_eq!(env[0].value.as_deref(), Some(a.as_str()));
        prop_assert_eq!(env[1].value.clone(), Some(format!("{a}\n")));
        // The remembered rendering, filled with this pod's values, is what reading it gives.
        let entries = template.render_entries(&data);
        prop_assert_eq!(entries, spec.to_entries().map_err(TemplateError::from));
    }
}

#[test]
fn a_remembered_parse_never_carries_one_pods_values_to_another() {
    // Same control flow, so the same rendered text: the second pod hits the parse memo.
    let template = "containers:\n- name: {{ ObjectMeta.name }}\n  args: [{{ ObjectMeta.labels?.app }}, \"--x={{ ObjectMeta.namespace }}\"]\n";
    let pod = |name: &str, app: &str, ns: &str| json!({"metadata": {"name": name, "namespace": ns, "labels": {"app": app}}});
    let first = render(template, &pod("a", "one", "ns1")).unwrap();
    let second = render(template, &pod("b: {x}\n- y", "two", "ns2")).unwrap();
    assert_eq!(first["containers"][0]["name"], "a");
    assert_eq!(second["containers"][0]["name"], "b: {x}\n- y");
    assert_eq!(second["containers"][0]["args"], json!(["two", "--x=ns2"]));
    assert_eq!(first["containers"][0]["args"], json!(["one", "--x=ns1"]));
}

#[test]
fn compiling_the_same_text_again_shares_the_compiled_template() {
    let source = "containers:\n- name: shared-{{ ObjectMeta.name }}\n";
    let first = SidecarTemplate::compile(source).unwrap();
    let again = SidecarTemplate::compile(source).unwrap();
    assert!(std::ptr::eq(&*first.compiled, &*again.compiled));
    let other = SidecarTemplate::compile("containers:\n- name: other\n").unwrap();
    assert!(!std::ptr::eq(&*first.compiled, &*other.compiled));
    assert_ne!(first.version(), other.version());
    // The built-in template is the static one, never counted.
    let copy = BUILTIN_TEMPLATE.to_owned();
    let builtin = SidecarTemplate::compile(&copy).unwrap();
    assert!(matches!(builtin.compiled, Shared::Static(_)));
    assert!(matches!(first.compiled, Shared::Counted(_)));
    // What `is_builtin` reads: a copy of the built-in's text is the built-in, nothing else is.
    assert!(builtin.is_builtin());
    assert!(
        SidecarTemplate::compile(BUILTIN_TEMPLATE)
            .unwrap()
            .is_builtin()
    );
    assert!(!first.is_builtin());
}

#[test]
fn the_parse_memo_keeps_only_the_newest_renderings() {
    // Numbers are written into the text, so each generation renders a text of its own.
    let source = "containers:\n- name: memo-{{ ObjectMeta.name }}\n  args: [\"{{ ObjectMeta.generation }}\"]\n";
    let template = SidecarTemplate::compile(source).unwrap();
    let mesh = MeshData::new(&MeshConfig::default());
    for n in 0..(cache::memo::REMEMBERED * 3) {
        let pod = json!({"metadata": {"name": format!("p{n}"), "generation": n}});
        let tree = template
            .render_tree(&TemplateData::new(&pod, None, &mesh))
            .unwrap();
        assert_eq!(tree["containers"][0]["name"], format!("memo-p{n}"));
        assert_eq!(tree["containers"][0]["args"][0], n.to_string());
    }
    assert_eq!(template.compiled.renderings.len(), cache::memo::REMEMBERED);
}

/// `render_entries` (remembered entries filled in) against `render` (read every time).
fn assert_entries_agree(template: &str, pod: &Value) {
    let template = SidecarTemplate::compile(template).unwrap();
    let mesh = MeshData::new(&MeshConfig::default());
    let data = TemplateData::new(pod, Some("default"), &mesh);
    let read = template
        .render(&data)
        .and_then(|spec| Ok(spec.to_entries()?));
    // Twice: the first parses, the second finds the rendering remembered.
    for _ in 0..2 {
        assert_eq!(template.render_entries(&data), read);
    }
}

#[test]
fn remembered_entries_agree_with_reading_the_rendering() {
    assert_entries_agree(BUILTIN_TEMPLATE, &sleep_pod());
    let containers = json!({"metadata": {"name": "x", "labels": {"a": "same", "b": "same"}},
        "spec": {"containers": [{"name": "app", "args": ["--a", "b"], "ports": [{"containerPort": 80}]}]}});
    // A list where the spec wants a list: the placeholder tree cannot be read, the filled one can.
    assert_entries_agree(
        "containers:\n- name: p\n  ports: {{ Spec.containers.0.ports }}\n",
        &containers,
    );
    // A list where the spec wants text: refused the same way on both paths.
    assert_entries_agree(
        "containers:\n- name: p\n  args: [{{ Spec.containers.0.args }}]\n",
        &containers,
    );
    // Names only known once filled in: duplicates are caught after filling.
    assert_entries_agree(
        "containers:\n- name: {{ ObjectMeta.labels.a }}\n- name: {{ ObjectMeta.labels.b }}\n",
        &containers,
    );
    // A text value that the spec converts (a port given as text) is read, not filled in.
    assert_entries_agree(
        "containers:\n- name: p\n  ports:\n  - containerPort: {{ ObjectMeta | annotation: \"port\", \"8080\" }}\n",
        &containers,
    );
}

#[test]
fn the_builtin_rendering_is_remembered_as_entries_ready_to_fill() {
    let template = SidecarTemplate::compile(BUILTIN_TEMPLATE).unwrap();
    let mesh = MeshData::new(&MeshConfig::default());
    let pod = sleep_pod();
    let data = TemplateData::new(&pod, Some("default"), &mesh);
    let filled = template
        .compiled
        .renderings
        .render_and_read(
            |writer| template.render_to(&data, writer),
            |parsed, captured| {
                let recipe = parsed.recipe.as_ref().expect("read with placeholders in");
                recipe.fill(&captured)
            },
        )
        .unwrap();
    assert!(filled.is_some(), "every value of the sleep pod is text");
}

#[test]
fn mesh_data_is_converted_once_per_distinct_mesh_config() {
    let default = MeshConfig::default();
    assert!(matches!(MeshData::shared(&default), Shared::Static(_)));
    assert!(std::ptr::eq(
        &*MeshData::shared(&default),
        &*MeshData::shared(&MeshConfig::default())
    ));
    let mut other = MeshConfig::default();
    other.default_config.discovery_address = "pilot.elsewhere:15007".into();
    let shared = MeshData::shared(&other);
    assert!(matches!(shared, Shared::Counted(_)));
    assert!(std::ptr::eq(&*shared, &*MeshData::shared(&other)));
    assert!(!std::ptr::eq(&*MeshData::shared(&default), &*shared));
    let pod = json!({"metadata": {"name": "p"}});
    let tree =
        SidecarTemplate::compile("containers:\n- name: {{ ProxyConfig.discoveryAddress }}\n")
            .unwrap()
            .render_tree(&TemplateData::new(&pod, None, &shared))
            .unwrap();
    assert_eq!(tree["containers"][0]["name"], "pilot.elsewhere:15007");
}

#[test]
fn placeholder_numbers_are_written_in_decimal() {
    for n in [0, 7, 10, 99, 12345, usize::MAX] {
        assert_eq!(cache::decimal(n, &mut [0; 20]), n.to_string());
    }
}

#[test]
fn optional_members_of_loop_variables_are_nothing_not_a_data_error() {
    let template = "containers:\n- name: x\n  args:\n  - {% for c in Spec.containers %}{% for p in c?.ports %}{{ p.containerPort }},{% endfor %}{{ c?.name }};{% endfor %}\n";
    let pod = json!({"spec": {"containers": [
        {"name": "a", "ports": [{"containerPort": 80}]},
        {"name": "b"}
    ]}});
    // `c?.ports` of the container without ports used to fail with "unknown name `c`".
    let e = render(template, &pod).unwrap_err().to_string();
    assert!(!e.contains("unknown name"), "{e}");
    assert!(e.contains("expected iterable"), "{e}");
    let template = "containers:\n- name: x\n  args:\n  - {% for c in Spec.containers %}{% if c?.ports %}{% for p in c.ports %}{{ p.containerPort }},{% endfor %}{% endif %}{{ c?.image?.tag }};{% endfor %}\n";
    let tree = render(template, &pod).unwrap();
    assert_eq!(tree["containers"][0]["args"][0], "80,;;");
    // Outside its loop, a loop variable's name is not the data's either.
    let outside = "containers:\n- name: x\n  args:\n  - {% for c in Spec.containers %}{% endfor %}{{ c.name }}\n";
    let e = render(outside, &pod).unwrap_err().to_string();
    assert!(
        e.contains("loop variable `c` is used outside its loop"),
        "{e}"
    );
}

#[test]
fn an_empty_scalar_where_text_is_expected_is_the_empty_string() {
    // A `-b` argument rendered empty is `- ` in the YAML: null, which Istio's reader makes "".
    let template = "initContainers:\n- name: istio-init\n  image: x\n  args:\n  - -b\n  - {% for c in Spec.containers %}{% if c?.ports %}{{ c.ports.0.containerPort }}{% endif %}{% endfor %}\n";
    let t = SidecarTemplate::compile(template).unwrap();
    let mesh = MeshData::new(&MeshConfig::default());
    let pod = json!({"spec": {"containers": [{"name": "a", "image": "a"}]}});
    let spec = t.render(&TemplateData::new(&pod, None, &mesh)).unwrap();
    assert_eq!(
        spec.init_containers[0].args.as_deref(),
        Some(&["-b".to_string(), String::new()][..])
    );
    let entries = t
        .render_entries(&TemplateData::new(&pod, None, &mesh))
        .unwrap();
    assert_eq!(entries.init_containers[0]["args"], json!(["-b", ""]));
}
