//! Tests of the Go dialect: Istio-shaped Go templates translated and rendered against their
//! upon equivalents, structure safety, refusals with positions, and detection.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::super::{MeshData, SidecarTemplate, TemplateData, TemplateError, TemplateSyntax};
use super::{Delims, detect, translate};
use crate::config::MeshConfig;

/// A Go template in the shape of Istio 1.0's ConfigMap (`[[ ]]`, Go field names, `isset`,
/// `index`, `or`, `range`, `printf`, `formatDuration`, `annotation`, trim markers).
const ISTIO_1_0: &str = include_str!("test_data/istio-1.0.yaml");
/// The same template written in upon.
const ISTIO_1_0_UPON: &str = include_str!("test_data/istio-1.0.upon.yaml");

fn pod(meta: Value, spec: Value) -> Value {
    json!({"metadata": meta, "spec": spec})
}

fn sleep() -> Value {
    pod(
        json!({"name": "sleep", "labels": {"app": "sleep"}}),
        json!({"containers": [{"name": "sleep", "image": "tutum/curl", "ports": [{"containerPort": 80}]}]}),
    )
}

/// Pods that take every branch of the Istio 1.0 template.
fn pods() -> Vec<(&'static str, Value)> {
    vec![
        ("sleep", sleep()),
        (
            "no ports, no labels",
            pod(
                json!({"name": "x"}),
                json!({"containers": [{"name": "a", "image": "a"}]}),
            ),
        ),
        (
            "two containers, service account",
            pod(
                json!({"name": "web", "labels": {"app": "web"}}),
                json!({"serviceAccountName": "web-sa", "containers": [
                    {"name": "a", "image": "a", "ports": [{"containerPort": 8080}, {"containerPort": 9090}]},
                    {"name": "b", "image": "b", "ports": [{"containerPort": 7070}]}
                ]}),
            ),
        ),
        (
            "every annotation",
            pod(
                json!({"name": "t", "annotations": {
                    "sidecar.istio.io/interceptionMode": "TPROXY",
                    "traffic.sidecar.istio.io/includeOutboundIPRanges": "10.0.0.0/8",
                    "traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.1.0.0/16",
                    "traffic.sidecar.istio.io/includeInboundPorts": "80",
                    "traffic.sidecar.istio.io/excludeInboundPorts": "9000",
                    "sidecar.istio.io/proxyImage": "my/proxy:1",
                    "sidecar.istio.io/proxyCPU": "50m",
                    "sidecar.istio.io/proxyMemory": "64Mi",
                    "sidecar.istio.io/controlPlaneAuthPolicy": "MUTUAL_TLS"
                }}),
                json!({"containers": [{"name": "a", "image": "a"}]}),
            ),
        ),
    ]
}

fn spec(template: &str, syntax: Option<TemplateSyntax>, pod: &Value) -> Value {
    let mesh = MeshData::new(&MeshConfig::default());
    let t = SidecarTemplate::compile_as(template, syntax).unwrap();
    let spec = t
        .render(&TemplateData::new(pod, Some("default"), &mesh))
        .unwrap();
    serde_json::to_value(spec).unwrap()
}

fn render_go(template: &str, pod: &Value) -> Result<Value, TemplateError> {
    let mesh = MeshData::new(&MeshConfig::default());
    let t = SidecarTemplate::compile_as(template, Some(TemplateSyntax::Go))?;
    t.render_tree(&TemplateData::new(pod, Some("default"), &mesh))
}

#[test]
fn istio_1_0_template_renders_as_its_upon_equivalent() {
    assert_eq!(TemplateSyntax::detect(ISTIO_1_0), TemplateSyntax::Go);
    assert_eq!(TemplateSyntax::detect(ISTIO_1_0_UPON), TemplateSyntax::Upon);
    for (case, pod) in pods() {
        let go = spec(ISTIO_1_0, None, &pod);
        let upon = spec(ISTIO_1_0_UPON, None, &pod);
        assert_eq!(go, upon, "{case}");
    }
}

#[test]
fn istio_1_0_template_gives_what_istio_gives() {
    let sleep = spec(ISTIO_1_0, None, &sleep());
    let init = &sleep["initContainers"][0];
    assert_eq!(
        init["args"],
        json!([
            "-p", "15001", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "80,", "-d",
            ""
        ])
    );
    let proxy = &sleep["containers"][0];
    let args: Vec<&str> = proxy["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(after("--serviceCluster"), "sleep");
    assert_eq!(after("--drainDuration"), "2s");
    assert_eq!(after("--proxyAdminPort"), "15000");
    assert_eq!(after("--zipkinAddress"), "");
    assert_eq!(proxy["securityContext"]["runAsUser"], 1337);
    assert_eq!(sleep["volumes"][1]["secret"]["secretName"], "istio.default");
    // Istio 1.0's reader had no `restartPolicy` on containers; it is not passed on.
    assert!(init.get("restartPolicy").is_none());
    assert!(proxy.get("restartPolicy").is_none());

    let (_, web) = &pods()[2];
    let web = spec(ISTIO_1_0, None, web);
    assert_eq!(web["initContainers"][0]["args"][11], "8080, 9090, 7070,");
    assert_eq!(web["volumes"][1]["secret"]["secretName"], "istio.web-sa");
}

#[test]
fn a_pod_without_ports_renders_an_empty_argument_not_null() {
    let (_, bare) = &pods()[1];
    let bare = spec(ISTIO_1_0, None, bare);
    assert_eq!(bare["initContainers"][0]["args"][11], "");
}

#[test]
fn both_delimiters_translate_alike() {
    let braces = ISTIO_1_0.replace("[[", "{{").replace("]]", "}}");
    assert_eq!(detect(&braces), Some(Delims::BRACES));
    for (case, pod) in pods() {
        assert_eq!(
            spec(&braces, None, &pod),
            spec(ISTIO_1_0, None, &pod),
            "{case}"
        );
    }
}

#[test]
fn builtins_and_istio_functions() {
    let p = pod(
        json!({"name": "n", "namespace": "ns", "labels": {"app": "a", "version": "v1"},
               "annotations": {"x": "1"}}),
        json!({"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]},
                              {"name": "istio-proxy", "image": "p", "ports": [{"containerPort": 15090}]}]}),
    );
    let cases: &[(&str, Value)] = &[
        (r#"[[ len .Spec.Containers ]]"#, json!(2)),
        (r#"[[ len .ObjectMeta.Labels ]]"#, json!(2)),
        (
            r#"[[ index .Spec.Containers 1 | printf "%v" ]]"#,
            json!("map[image:p name:istio-proxy ports:[map[containerPort:15090]]]"),
        ),
        (r#"[[ (index .Spec.Containers 0).Name ]]"#, Value::Null),
        (r#"[[ print "a" 1 2 "b" ]]"#, json!("a1 2b")),
        (r#"[[ printf "%s-%d" .ObjectMeta.Name 7 ]]"#, json!("n-7")),
        (r#"[[ eq .ObjectMeta.Namespace "ns" ]]"#, json!(true)),
        (r#"[[ ne .ObjectMeta.Namespace "ns" ]]"#, json!(false)),
        (
            r#"[[ lt 1 2 ]]-[[ le 2 2 ]]-[[ gt 1 2 ]]-[[ ge 1.5 1 ]]"#,
            json!("true-true-false-true"),
        ),
        (r#"[[ and .ObjectMeta.Name "" "z" ]]"#, json!("")),
        (r#"[[ or "" .ObjectMeta.Labels.version ]]"#, json!("v1")),
        (r#"[[ not .ObjectMeta.Labels.missing ]]"#, json!(true)),
        (r#"[[ .ObjectMeta.Labels.missing ]]x"#, json!("x")),
        (
            r#"[[ if .Spec.HostNetwork ]]yes[[ else ]]no[[ end ]]"#,
            json!("no"),
        ),
        (
            r#"[[ range $i, $c := .Spec.Containers ]][[ $i ]]=[[ $c.Name ]];[[ end ]]"#,
            json!("0=c;1=istio-proxy;"),
        ),
        (
            r#"[[ range $k, $v := .ObjectMeta.Labels ]][[ $k ]]:[[ $v ]],[[ end ]]"#,
            json!("app:a,version:v1,"),
        ),
        (
            r#"[[ range .Spec.Volumes ]]v[[ else ]]none[[ end ]]"#,
            json!("none"),
        ),
        (
            r#"[[ with .ObjectMeta.Labels ]][[ .app ]][[ end ]]"#,
            json!("a"),
        ),
        (
            r#"[[ with .ObjectMeta.Labels.missing ]]x[[ else ]]empty[[ end ]]"#,
            json!("empty"),
        ),
        (
            r#"[[ $n := .ObjectMeta.Name ]][[ $n ]][[ $.ObjectMeta.Namespace ]]"#,
            json!("nns"),
        ),
        (
            r#"[[ if eq .ObjectMeta.Name "x" ]]1[[ else if eq .ObjectMeta.Name "n" ]]2[[ else ]]3[[ end ]]"#,
            json!(2),
        ),
        (
            r#"[[ annotation .ObjectMeta "x" "d" ]]-[[ annotation .ObjectMeta "y" "d" ]]"#,
            json!("1-d"),
        ),
        (
            r#"[[ valueOrDefault .Spec.ServiceAccountName "default" ]]"#,
            json!("default"),
        ),
        (r#"[[ isset .ObjectMeta.Annotations "x" ]]"#, json!(true)),
        (
            r#"[[ includeInboundPorts .Spec.Containers ]]"#,
            json!("80,15090"),
        ),
        (r#"[[ applicationPorts .Spec.Containers ]]"#, json!("80")),
        (
            r#"[[ excludeInboundPort 15020 "15090" ]]"#,
            json!("15090,15020"),
        ),
        (
            r#"[[ formatDuration .ProxyConfig.DrainDuration ]]"#,
            json!("2s"),
        ),
        (
            r#"[[ toJSON .ObjectMeta.Labels ]]"#,
            json!(r#"{"app":"a","version":"v1"}"#),
        ),
        (r#"[[ (fromJSON "{\"a\": 3}").a ]]"#, Value::Null),
        (r#"[[ index (fromJSON "{\"a\": 3}") "a" ]]"#, json!(3)),
        (
            r#"[[ directory .ProxyConfig.ConfigPath ]]"#,
            json!("/etc/istio/"),
        ),
        (
            r#"[[ contains "ist" .ProxyConfig.ConfigPath ]]"#,
            json!(true),
        ),
        (r#"[[ toLower "AB" ]][[ toUpper "cd" ]]"#, json!("abCD")),
        (
            r#"[[ join "," (index .Spec.Containers 0).ports ]]"#,
            Value::Null,
        ),
        (
            r#"[[ printf "%s %s %s %s %s %s" "a" "b" "c" "d" "e" "f" ]]"#,
            json!("a b c d e f"),
        ),
        (r#"[[ .ObjectMeta.Name | printf "%s!" ]]"#, json!("n!")),
        (r#"[[- "  a  " -]]"#, json!("  a  ")),
        (
            r#"[[ .ProxyConfig.InterceptionMode.String ]]"#,
            json!("REDIRECT"),
        ),
        (
            r#"[[ .MeshConfig.DefaultConfig.ProxyAdminPort ]]"#,
            json!(15000),
        ),
    ];
    for (template, expected) in cases {
        if expected.is_null() {
            // Refused at load time.
            assert!(
                matches!(render_go(template, &p), Err(TemplateError::Syntax { .. })),
                "{template}: {:?}",
                render_go(template, &p)
            );
            continue;
        }
        let tree = render_go(template, &p).unwrap_or_else(|e| panic!("{template}: {e}"));
        assert_eq!(&tree, expected, "{template}");
    }
}

#[test]
fn refused_constructs_name_themselves_and_their_position() {
    let cases: &[(&str, (usize, usize), &str)] = &[
        (
            "a: 1\nb: [[ define \"x\" ]][[ end ]]",
            (2, 4),
            "`define` is not supported",
        ),
        (
            "[[ template \"x\" . ]]",
            (1, 1),
            "`template` is not supported",
        ),
        (
            "[[ block \"x\" . ]][[ end ]]",
            (1, 1),
            "`block` is not supported",
        ),
        (
            "[[ range .Spec.Containers ]][[ break ]][[ end ]]",
            (1, 29),
            "`break` is not supported",
        ),
        (
            "x: [[ html .ObjectMeta.Name ]]",
            (1, 7),
            "function `html` is not supported",
        ),
        (
            "x: [[ env \"HOME\" .ObjectMeta.Name ]]",
            (1, 7),
            "function `env` is not supported",
        ),
        (
            "x: [[ nosuch .ObjectMeta.Name ]]",
            (1, 7),
            "function `nosuch` is not defined",
        ),
        (
            "x: [[ not .Spec .Spec ]]",
            (1, 7),
            "wrong number of arguments for `not`",
        ),
        (
            "x: [[ .Values.global.hub ]]",
            (1, 7),
            "`.Values` is not in the template data",
        ),
        (
            "x: [[ .DeploymentMeta.Name ]]",
            (1, 7),
            "Istio 1.1 and later",
        ),
        ("x: [[ $x ]]", (1, 7), "undefined variable `$x`"),
        (
            "x: [[ $x := 1 ]][[ $x = 2 ]]",
            (1, 17),
            "assigning to a variable",
        ),
        (
            "x: [[ printf \"%w\" .ObjectMeta.Name ]]",
            (1, 7),
            "printf verb `%w` is not supported",
        ),
        (
            "x: [[ eq nil .ObjectMeta.Name ]]",
            (1, 10),
            "`nil` is not supported",
        ),
        ("x: [[ 'a' ]]", (1, 7), "character constants"),
        (
            "x: [[ (index .Spec.Containers 0).Name ]]",
            (1, 33),
            "`(…).Field`",
        ),
        ("x: [[ .ObjectMeta.Name\ny 1", (1, 4), "`]]` missing"),
        (
            "x: [[ if .Spec.HostNetwork ]]y",
            (1, 4),
            "`if` has no matching `end`",
        ),
        (
            "[[ .ObjectMeta.Name ]][[ end ]]",
            (1, 23),
            "unexpected `end`",
        ),
        (
            "[[ with .Spec ]][[ else with .Spec ]][[ end ]]",
            (1, 17),
            "`else with` is not supported",
        ),
        ("x: [[ . ]]", (1, 7), "`.` is the whole template data"),
        (
            "x: [[ .ObjectMeta.Name 1 ]]",
            (1, 7),
            "methods are not supported",
        ),
        (
            "x: [[ 1 | .ObjectMeta.Name ]]",
            (1, 11),
            "only a function call can follow `|`",
        ),
    ];
    for (template, (line, column), message) in cases {
        let e = SidecarTemplate::compile_as(template, Some(TemplateSyntax::Go)).unwrap_err();
        let TemplateError::Syntax {
            line: l,
            column: c,
            reason,
        } = &e
        else {
            panic!("{template}: {e}")
        };
        assert!(reason.contains(message), "{template}: {reason}");
        assert_eq!((*l, *c), (*line, *column), "{template}: {reason}");
    }
}

#[test]
fn render_errors_point_at_the_go_action() {
    let template = "containers:\n- name: x\n  args:\n  - [[ range .ObjectMeta.Name ]]a[[ end ]]\n";
    let e = render_go(template, &sleep()).unwrap_err();
    let TemplateError::Render {
        line,
        column,
        reason,
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!((*line, *column), (4, 5), "{e}");
    assert!(
        reason.contains("range can't iterate over a string"),
        "{reason}"
    );
}

#[test]
fn templates_without_go_references_are_upon() {
    assert_eq!(
        detect("a: {{ ObjectMeta.name }}\n{% if x %}{% endif %}"),
        None
    );
    assert_eq!(
        detect(r#"a: {{ ObjectMeta | annotation: "a.b/$c", ".x" }}"#),
        None
    );
    assert_eq!(detect("a: [[1, 2]]"), None);
    assert_eq!(detect("a: {{ .ObjectMeta.Name }}"), Some(Delims::BRACES));
    assert_eq!(detect("a: {{ $x := 1 }}"), Some(Delims::BRACES));
    assert_eq!(detect("a: [[ if x ]]b[[ end ]]"), Some(Delims::BRACKETS));
    // The override reads an ambiguous text as Go: `{{ "x" }}` is a string in both.
    let t = SidecarTemplate::compile_as("containers: []\n{{ \"\" }}", Some(TemplateSyntax::Go));
    assert!(t.is_ok());
}

#[test]
fn upon_delimiters_in_go_text_stay_text() {
    let tree = render_go(
        "containers:\n- name: x\n  image: \"{% raw {{ x }} {# c #}[[ .ObjectMeta.Name ]]\"\n",
        &sleep(),
    )
    .unwrap();
    assert_eq!(
        tree["containers"][0]["image"],
        "{% raw {{ x }} {# c #}sleep"
    );
}

#[test]
fn translation_is_made_once_per_text() {
    let first = SidecarTemplate::compile_as(ISTIO_1_0, None).unwrap();
    let second = SidecarTemplate::compile_as(ISTIO_1_0, None).unwrap();
    assert!(first.same_compiled(&second));
    assert_eq!(
        first.version(),
        crate::template::compile::hex_sha256(ISTIO_1_0)
    );
}

#[test]
fn translated_text_uses_only_upon() {
    let t = translate(ISTIO_1_0, Delims::BRACKETS).unwrap();
    assert!(!t.text.contains("[["), "{}", t.text);
    assert!(!t.text.contains(".ObjectMeta"), "{}", t.text);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever a pod's annotation or label holds, the Go template renders it as exactly that
    /// one scalar: the YAML's structure never changes.
    #[test]
    fn go_templates_are_structure_safe(
        image in "[ -~\n\t]{0,40}",
        app in prop_oneof![Just("a\n- b: c".to_string()), Just("]] [[ .X ]]".to_string()), Just("{{ ObjectMeta }}".to_string()), "[ -~\n]{0,30}"],
    ) {
        let p = pod(
            json!({"name": "p", "labels": {"app": app}, "annotations": {"sidecar.istio.io/proxyImage": image}}),
            json!({"containers": [{"name": "a", "image": "a"}]}),
        );
        let tree = render_go(ISTIO_1_0, &p).unwrap();
        let proxy = &tree["containers"][0];
        prop_assert_eq!(&proxy["image"], &json!(image));
        let args = proxy["args"].as_array().unwrap();
        let at = args.iter().position(|a| a == "--serviceCluster").unwrap();
        let expected = if app.is_empty() { "istio-proxy".to_string() } else { app.clone() };
        prop_assert_eq!(&args[at + 1], &json!(expected));
        prop_assert_eq!(tree.as_object().unwrap().len(), 3);
        prop_assert_eq!(tree["containers"].as_array().unwrap().len(), 1);
        prop_assert_eq!(tree["initContainers"][0]["args"].as_array().unwrap().len(), 14);
    }
}

#[test]
fn nesting_without_bound_is_refused_not_a_stack_overflow() {
    let parens = format!(
        "x: [[ {}.ObjectMeta.Name{} ]]",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    let blocks = format!(
        "{}x{}",
        "[[ if .Spec ]]".repeat(5000),
        "[[ end ]]".repeat(5000)
    );
    let variables = "[[ $a := 1 ]]".repeat(10_000);
    let else_ifs = format!(
        "[[ if .Spec ]]{}[[ end ]]",
        "[[ else if .Spec ]]".repeat(10_000)
    );
    for (what, template) in [
        ("parentheses", parens),
        ("blocks", blocks),
        ("variables", variables),
        ("else if", else_ifs),
    ] {
        let e = SidecarTemplate::compile_as(&template, Some(TemplateSyntax::Go)).unwrap_err();
        assert!(
            matches!(&e, TemplateError::Syntax { reason, .. } if reason.contains("nest")),
            "{what}: {e}"
        );
    }
}

#[test]
fn a_brace_before_an_action_stays_text() {
    let tree = render_go(
        "containers:\n- name: x\n  image: \"{[[ .ObjectMeta.Name ]]}{[[/* c */]]%b\"\n",
        &sleep(),
    )
    .unwrap();
    assert_eq!(tree["containers"][0]["image"], "{sleep}{%b");
}

#[test]
fn upon_names_with_underscores_are_not_go_words() {
    assert_eq!(detect("a: {{ end_time }}\nb: {{ range_item.name }}"), None);
    assert_eq!(detect("{% with x as if_x %}{{ if_x }}{% endwith %}"), None);
}

#[test]
fn missing_values_print_as_nothing_and_printf_is_bounded() {
    let p = sleep();
    assert_eq!(
        render_go(r#"[[ printf "istio.%s" .Spec.ServiceAccountName ]]"#, &p).unwrap(),
        json!("istio.")
    );
    assert_eq!(
        render_go("[[ print .Spec.Missing ]]x", &p).unwrap(),
        json!("x")
    );
    let long = render_go(r#"[[ printf "%.2000000000f" 1.5 ]]"#, &p).unwrap();
    assert!(long.as_str().unwrap().len() < 5000);
}
