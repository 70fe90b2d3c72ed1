//! Tests of the parent module, compiled only under #[cfg(test)].

use super::*;
use crate::config::{Config, InjectorConfig};
use crate::object::kinds::KINDS;
use serde_json::json;

const SLEEP: &str = include_str!("../../samples/sleep/sleep.yaml");

fn builtin() -> Injector {
    Injector::new(Config::default()).unwrap()
}

/// The sleep sample's first document (comments and Service), as written.
fn manifest_service() -> &'static str {
    &SLEEP[..SLEEP.find("---\n").unwrap()]
}

fn texts<'a>(chunks: &[Chunk<'a>]) -> Vec<&'a str> {
    chunks.iter().map(|c| c.text).collect()
}

/// An operation that marks every pod it sees.
fn mark(pod: &mut Value, _: &Workload) -> Result<PodChange, std::convert::Infallible> {
    pod["metadata"]["annotations"] = json!({"marked": "yes"});
    Ok(PodChange {
        changed: true,
        warnings: vec!["marked".into()],
    })
}

#[test]
fn split_drops_bare_markers_and_blank_documents() {
    let chunks = split("---\na: 1\n---   \n\n---\nb: 2\n");
    assert_eq!(texts(&chunks), ["a: 1\n", "b: 2\n"]);
    assert_eq!(chunks[0].line, 2);
    assert_eq!(chunks[1].line, 6);
}

#[test]
fn split_keeps_a_start_marker_with_content() {
    let chunks = split("a: 1\n--- {b: 2}\n--- # note\nc: 3\n");
    assert_eq!(
        texts(&chunks),
        ["a: 1\n", "--- {b: 2}\n", "--- # note\nc: 3\n"]
    );
}

#[test]
fn split_ends_a_document_at_an_end_marker() {
    let chunks = split("a: 1\n...\nb: 2\n");
    assert_eq!(texts(&chunks), ["a: 1\n...\n", "b: 2\n"]);
}

#[test]
fn split_ignores_indented_and_longer_dashes() {
    let chunks = split("a: |\n  ---\n----\nb: ---x\n");
    assert_eq!(chunks.len(), 1);
}

#[test]
fn split_handles_crlf_and_missing_final_newline() {
    let chunks = split("a: 1\r\n---\r\nb: 2");
    assert_eq!(texts(&chunks), ["a: 1\r\n", "b: 2"]);
}

#[test]
fn documents_are_numbered_from_one_skipping_comment_only_ones() {
    let manifest = process("# header\n---\nkind: A\n---\nkind: B\n", mark).unwrap();
    let indexes: Vec<_> = manifest.documents.iter().map(|d| d.index).collect();
    assert_eq!(indexes, [None, Some(1), Some(2)]);
}

#[test]
fn unregistered_documents_pass_through_byte_for_byte() {
    let input = "# a comment\napiVersion: v1\nkind: ConfigMap   # odd spacing\ndata: {k: v}\n---\napiVersion: example.com/v1\nkind: Widget\n";
    let manifest = process(input, mark).unwrap();
    assert!(!manifest.changed());
    assert_eq!(manifest.to_yaml(), input);
}

#[test]
fn a_kind_on_an_unknown_api_version_passes_through_with_a_warning() {
    let input = "apiVersion: apps/v1beta1\nkind: DaemonSet\nmetadata: {name: odd}\nspec:\n  template:\n    spec: {containers: [{name: a}]}\n";
    let manifest = process(input, mark).unwrap();
    assert_eq!(manifest.to_yaml(), input);
    let warnings: Vec<_> = manifest.warnings().collect();
    assert_eq!(
        warnings,
        [
            "document 1 (DaemonSet odd): apiVersion apps/v1beta1 is not injected (DaemonSet is injected as apps/v1); passed through unchanged"
        ]
    );
}

#[test]
fn old_api_versions_are_handled_with_a_warning_naming_the_current_one() {
    let input = "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: old}\nspec:\n  template:\n    spec: {containers: [{name: a}]}\n";
    let manifest = process(input, mark).unwrap();
    assert!(manifest.changed());
    let out: Value = serde_yaml::from_str(&manifest.to_yaml()).unwrap();
    assert_eq!(out["apiVersion"], "extensions/v1beta1");
    assert_eq!(
        out["spec"]["template"]["metadata"]["annotations"]["marked"],
        "yes"
    );
    let warnings: Vec<_> = manifest.warnings().collect();
    assert_eq!(
        warnings,
        [
            "document 1 (Deployment old): apiVersion extensions/v1beta1 is not served by Kubernetes 1.16 and later; move to apps/v1",
            "document 1 (Deployment old): marked",
        ]
    );
}

#[test]
fn every_old_api_version_names_a_current_one_of_the_table() {
    let old: Vec<_> = KINDS.iter().filter(|k| k.superseded.is_some()).collect();
    assert_eq!(old.len(), 11);
    for k in old {
        let by = k.superseded.map(|s| s.by).unwrap_or_default();
        let current = lookup(by, k.kind).unwrap();
        assert_eq!(current.superseded, None, "{}/{}", k.api_version, k.kind);
        assert_eq!(current.pods, k.pods, "{}/{}", k.api_version, k.kind);
        assert_eq!(current.istio_status_on, k.istio_status_on);
    }
}

/// What `istioctl kube-inject` writes for a CronJob: the status on the job template's
/// metadata, the entries in the pod template.
const ISTIOCTL_CRONJOB: &str = r#"apiVersion: batch/v2alpha1
kind: CronJob
metadata: {name: report}
spec:
  schedule: '@daily'
  jobTemplate:
    metadata:
      annotations:
        sidecar.istio.io/status: '{"version":"abc","initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy","istio-certs"],"imagePullSecrets":null}'
    spec:
      template:
        metadata:
          labels: {app: report}
        spec:
          containers:
          - {name: report, image: busybox}
          - {name: istio-proxy, image: docker.io/istio/proxyv2:1.0.0}
          initContainers:
          - {name: istio-init, image: docker.io/istio/proxy_init:1.0.0}
          volumes:
          - {name: istio-envoy, emptyDir: {medium: Memory}}
          - {name: istio-certs, secret: {secretName: istio.default}}
"#;

#[test]
fn istioctl_cronjob_output_is_reinjected_with_the_status_where_we_write_it() {
    let manifest = inject(ISTIOCTL_CRONJOB, &builtin()).unwrap();
    assert!(manifest.changed());
    let out: Value = serde_yaml::from_str(&manifest.to_yaml()).unwrap();
    let job = &out["spec"]["jobTemplate"];
    assert!(job.get("metadata").is_none(), "{job:#}");
    let pod = &job["spec"]["template"];
    let containers: Vec<_> = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["image"].as_str().unwrap()))
        .collect();
    assert_eq!(
        containers,
        [
            ("report", "busybox"),
            ("istio-proxy", "istio.io/proxy:0.5.0")
        ]
    );
    let status = surgery::read_status(pod).unwrap().unwrap();
    assert_eq!(status.version, builtin().template().version());
    // Injecting the output again changes nothing.
    let output = manifest.to_yaml();
    assert!(!inject(&output, &builtin()).unwrap().changed());
}

#[test]
fn istioctl_cronjob_output_is_uninjected() {
    let manifest = uninject(ISTIOCTL_CRONJOB).unwrap();
    assert!(manifest.changed());
    assert_eq!(
        manifest.warnings().count(),
        1,
        "only the apiVersion warning"
    );
    let out: Value = serde_yaml::from_str(&manifest.to_yaml()).unwrap();
    assert!(
        out["spec"]["jobTemplate"].get("metadata").is_none(),
        "{out:#}"
    );
    assert_eq!(
        out["spec"]["jobTemplate"]["spec"]["template"],
        json!({"metadata": {"labels": {"app": "report"}},
               "spec": {"containers": [{"name": "report", "image": "busybox"}]}})
    );
}

#[test]
fn a_pod_template_status_wins_over_the_job_templates() {
    let ours = inject(
        &ISTIOCTL_CRONJOB.replace("batch/v2alpha1", "batch/v1"),
        &builtin(),
    )
    .unwrap()
    .to_yaml();
    let mut both: Value = serde_yaml::from_str(&ours).unwrap();
    both["spec"]["jobTemplate"]["metadata"] =
        json!({"annotations": {surgery::STATUS_ANNOTATION: "{not json"}});
    let input = to_yaml(&both);
    let manifest = inject(&input, &builtin()).unwrap();
    // Ours is current, so nothing changes; the job template's is not even read.
    assert!(!manifest.changed());
    assert_eq!(manifest.to_yaml(), input);
}

#[test]
fn a_skipped_istioctl_cronjob_is_left_as_it_was() {
    let input = ISTIOCTL_CRONJOB.replace(
        "labels: {app: report}",
        "labels: {app: report, sidecar.istio.io/inject: 'false'}",
    );
    let manifest = inject(&input, &builtin()).unwrap();
    assert!(!manifest.changed());
    assert_eq!(manifest.to_yaml(), input);
}

#[test]
fn every_registered_kind_reaches_its_pod() {
    for k in KINDS.iter().filter(|k| k.pods != PodsAt::Items) {
        let pod =
            json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "a"}]}});
        let mut object =
            json!({"apiVersion": k.api_version, "kind": k.kind, "metadata": {"name": "w"}});
        match k.pods {
            PodsAt::Object => {
                object["spec"] = pod["spec"].clone();
            }
            PodsAt::Template(path) => {
                let pointer: String = path.iter().map(|p| format!("/{p}")).collect();
                let mut holder = json!({});
                let mut at = &mut holder;
                for key in path {
                    at = at
                        .as_object_mut()
                        .unwrap()
                        .entry(key.to_string())
                        .or_insert(json!({}));
                }
                *at = pod.clone();
                object["spec"] = holder["spec"].clone();
                assert!(object.pointer(&pointer).is_some());
            }
            PodsAt::Items => unreachable!(),
        }
        let input = to_yaml(&object);
        let mut seen = Vec::new();
        let manifest = process(&input, |pod, w| {
            seen.push(w.path.clone());
            mark(pod, w)
        })
        .unwrap();
        assert!(manifest.changed(), "{}/{}", k.api_version, k.kind);
        assert!(
            manifest.to_yaml().contains("marked: 'yes'"),
            "{}",
            manifest.to_yaml()
        );
        assert_eq!(seen.len(), 1);
    }
}

#[test]
fn list_items_are_walked_and_named() {
    let input = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: web}\n  spec:\n    template:\n      spec: {containers: [{name: a}]}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: cfg}\n";
    let manifest = process(input, mark).unwrap();
    assert!(manifest.changed());
    let warnings: Vec<_> = manifest.warnings().collect();
    assert_eq!(
        warnings,
        ["document 1 (List items[0]: Deployment web): marked"]
    );
    let out: Value = serde_yaml::from_str(&manifest.to_yaml()).unwrap();
    assert_eq!(
        out["items"][0]["spec"]["template"]["metadata"]["annotations"]["marked"],
        "yes"
    );
    assert_eq!(out["items"][1]["metadata"]["name"], "cfg");
}

#[test]
fn namespace_comes_from_the_object() {
    let input = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, namespace: kube-system}\nspec: {template: {spec: {containers: [{name: a}]}}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {containers: [{name: b}]}\n";
    let mut seen = Vec::new();
    process(input, |pod, w| {
        seen.push(w.namespace.clone());
        mark(pod, w)
    })
    .unwrap();
    assert_eq!(seen, [Some("kube-system".to_string()), None]);
}

#[test]
fn errors_name_the_document() {
    let bad = "kind: A\n---\na: [\n";
    let err = process(bad, mark).unwrap_err();
    assert!(
        matches!(
            err,
            ManifestError::InvalidYaml {
                index: 2,
                line: 3,
                ..
            }
        ),
        "{err:?}"
    );
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("line 4"), "{source}");

    let err = process("kind: A\n---\nmetadata: {}\n", mark).unwrap_err();
    assert_eq!(
        err.to_string(),
        "document 2 (from line 3): no `kind`; every Kubernetes object needs one, e.g. `kind: Deployment`"
    );
    let err = process("- a\n", mark).unwrap_err();
    assert_eq!(
        err.to_string(),
        "document 1 (from line 1) is a list, not a Kubernetes object"
    );
    let err = process("apiVersion: v1\nkind: List\nitems: [{a: 1}]\n", mark).unwrap_err();
    assert!(err.to_string().contains(", items[0]: no `kind`"), "{err}");
    let err = process(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {}\n",
        mark,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "document 1 (Deployment x): spec.template is missing or not an object; a Deployment needs a pod template there"
    );
}

#[test]
fn operation_errors_keep_their_cause() {
    let config = Config {
        injector: InjectorConfig {
            template: "containers: [{name: x, image: '{{ Nope.nothing }}'}]".into(),
            ..InjectorConfig::default()
        },
        ..Config::default()
    };
    let injector = Injector::new(config).unwrap();
    let err = inject(SLEEP, &injector).unwrap_err();
    assert_eq!(
        err.to_string(),
        "document 2 (Deployment sleep): spec.template"
    );
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("line 1, column"), "{cause}");
}

#[test]
fn inject_sleep_changes_only_the_deployment() {
    let manifest = inject(SLEEP, &builtin()).unwrap();
    let service = &manifest.documents[0];
    assert!(!service.changed);
    assert_eq!(service.output, service.original);
    assert!(manifest.documents[1].changed);
    let out = manifest.to_yaml();
    assert!(out.starts_with(service.original), "{out}");
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&out)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let containers = &docs[1]["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[1]["name"], "istio-proxy");
}

#[test]
fn inject_is_idempotent_on_its_output_byte_for_byte() {
    let injector = builtin();
    let once = inject(SLEEP, &injector).unwrap().to_yaml();
    let twice = inject(&once, &injector).unwrap();
    assert!(!twice.changed());
    assert_eq!(twice.to_yaml(), once);
}

#[test]
fn uninject_restores_the_data() {
    let injected = inject(SLEEP, &builtin()).unwrap().to_yaml();
    let restored = uninject(&injected).unwrap().to_yaml();
    assert_eq!(objects(&restored).unwrap(), objects(SLEEP).unwrap());
    // The Service is untouched and the rewritten Deployment keeps its leading comment lines;
    // only its layout is the writer's (`command: [..]` becomes a block list).
    assert!(restored.starts_with(manifest_service()), "{restored}");
}

#[test]
fn skipped_pods_are_warned_and_untouched() {
    let input = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\nspec:\n  template:\n    spec: {hostNetwork: true, containers: [{name: a}]}\n";
    let manifest = inject(input, &builtin()).unwrap();
    assert_eq!(manifest.to_yaml(), input);
    let warnings: Vec<_> = manifest.warnings().collect();
    assert_eq!(
        warnings,
        [
            "document 1 (DaemonSet agent): skipping injection: the pod has host networking enabled (spec.hostNetwork)"
        ]
    );
}

#[test]
fn output_joins_with_markers_between_documents() {
    let manifest = process("kind: A\n---\n--- {kind: B}\n---\nkind: C", mark).unwrap();
    assert_eq!(manifest.to_yaml(), "kind: A\n--- {kind: B}\n---\nkind: C");
}

/// Found by the `manifest` fuzz target (`fuzz/seeds/manifest/regression-final-newline-block`):
/// a `|` block ending the file without a line break holds `echo `; adding the break on output
/// made it `echo \n` in the untouched document, so uninjecting the output and the input
/// disagreed.
#[test]
fn a_last_document_without_final_newline_is_written_back_without_one() {
    let input = "kind: ConfigMap\ndata:\n  script: |\n    echo ";
    let value = |text: &str| serde_yaml::from_str::<Value>(text).unwrap()["data"]["script"].clone();
    assert_eq!(value(input), json!("echo "));
    let output = inject(&format!("{SLEEP}---\n{input}"), &builtin())
        .unwrap()
        .to_yaml();
    assert!(output.ends_with(input), "{output}");
    let uninjected = uninject(&output).unwrap().to_yaml();
    assert!(uninjected.ends_with(input), "{uninjected}");
}

#[test]
fn a_rewritten_document_keeps_its_leading_comments_and_marker_comment() {
    let input =
        "kind: A\n--- # note\n# about b\napiVersion: v1\nkind: Pod\nspec: {containers: []}\n";
    let manifest = process(input, mark).unwrap();
    let out = manifest.to_yaml();
    assert!(
        out.starts_with("kind: A\n--- # note\n# about b\napiVersion: v1\nkind: Pod\n"),
        "{out}"
    );
    // The output splits into the same documents again.
    assert_eq!(objects(&out).unwrap().len(), 2);
}

#[test]
fn empty_input_gives_empty_output() {
    for input in ["", "\n", "---\n", "---\n---\n\n"] {
        let manifest = process(input, mark).unwrap();
        assert!(manifest.documents.is_empty(), "{input:?}");
        assert_eq!(manifest.to_yaml(), "");
    }
}

#[test]
fn yaml_writer_quotes_what_yaml_1_1_would_misread() {
    let tricky = [
        "yes",
        "No",
        "on",
        "OFF",
        "y",
        "n",
        "true",
        "null",
        "~",
        "",
        "-",
        "- x",
        "0777",
        "1.0",
        "1e3",
        "12:30",
        ".inf",
        "-1",
        "+1",
        "=",
        "<<",
        "a: b",
        "a #b",
        "#x",
        "'q'",
        "\"q\"",
        "{x}",
        "[x]",
        "*a",
        "&a",
        "!t",
        "%d",
        "@x",
        "`x",
        "|",
        ">",
        "?",
        ":x",
        "x:",
        " x",
        "x ",
        "é",
        "\u{2028}",
        "\u{7f}",
        "tab\there",
        "a\nb",
        "a\nb\n",
        "a\n\n",
        "\nlead",
        "  indented\nx",
        "x\n  \ny",
        "\r\n",
        "ends\\",
        "--flag",
        "-p",
        "$(POD_NAME)",
        "/bin/sleep",
        "http://x:80/y",
        "istio.io/proxy:0.5.0",
    ];
    let value = Value::Object(
        tricky
            .iter()
            .map(|s| (s.to_string(), json!([s, {"k": s}])))
            .collect(),
    );
    let text = to_yaml(&value);
    let back: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(back, value, "{text}");
    for word in ["yes", "No", "on", "OFF", "y", "n"] {
        assert!(text.contains(&format!("- '{word}'")), "{word}: {text}");
    }
}

/// The layout includes each map's key order, which only a `preserve_order` build keeps
/// (kube-inject's; the policy module never writes YAML).
#[cfg(feature = "preserve_order")]
#[test]
fn yaml_writer_uses_kubectl_layout() {
    let value = json!({
        "spec": {
            "containers": [{"name": "a", "args": ["-p", 15001], "env": []}],
            "script": "echo a\necho b\n",
            "empty": {},
            "nested": [[1, 2], {}],
            "annotation": "{\"version\":\"x\"}",
        }
    });
    assert_eq!(
        to_yaml(&value),
        "spec:\n  containers:\n  - name: a\n    args:\n    - -p\n    - 15001\n    env: []\n  script: |\n    echo a\n    echo b\n  empty: {}\n  nested:\n  - - 1\n    - 2\n  - {}\n  annotation: '{\"version\":\"x\"}'\n"
    );
}

mod never_loses_input {
    //! Property: over generated manifests (workloads of every kind, Lists, comments, `---` inside
    //! strings, CRLF line ends, a BOM, tabs, long lines), every document that is not injected
    //! comes out byte for byte, and uninjecting the output gives every document's content back.

    use super::*;
    use proptest::prelude::*;

    /// One document of a generated manifest: its text, and whether injection changes it.
    #[derive(Debug, Clone)]
    struct Doc {
        text: String,
        workload: bool,
    }

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9]{1,12}",
            Just("---".to_string()),
            Just("a # not a comment".to_string()),
            Just("x\ty".to_string()),
            "[a-z]{300,600}",
            Just("--- inside".to_string()),
        ]
    }

    fn config_map() -> impl Strategy<Value = Doc> {
        (scalar(), scalar(), any::<bool>()).prop_map(|(a, b, comment)| Doc {
            text: format!(
                "{}apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: {}\n  b: |\n    {}\n    --- not a marker\n",
                if comment { "# a config map\n" } else { "" },
                serde_json::to_string(&a).unwrap(),
                b
            ),
            workload: false,
        })
    }

    fn workload() -> impl Strategy<Value = Doc> {
        let kinds: Vec<_> = KINDS
            .iter()
            .filter(|k| k.superseded.is_none() && k.kind != "List")
            .map(|k| (k.api_version, k.kind))
            .collect();
        (proptest::sample::select(kinds), scalar(), any::<bool>()).prop_map(
            |((api_version, kind), label, comment)| {
                let pod_spec =
                    "containers:\n- name: app\n  image: app:1\n  ports:\n  - containerPort: 8080\n";
                let mut object = serde_json::json!({"apiVersion": api_version, "kind": kind,
                    "metadata": {"name": "w", "labels": {"x": label}}});
                let template = serde_json::json!({"metadata": {"labels": {"app": "w"}},
                    "spec": serde_yaml::from_str::<Value>(pod_spec).unwrap()});
                match crate::object::kinds::template_of(kind) {
                    Some(path) if !path.is_empty() => {
                        let mut at = &mut object;
                        for key in path.iter() {
                            at = &mut at[*key];
                        }
                        *at = template;
                    }
                    _ => {
                        object["metadata"]["labels"]["app"] = serde_json::json!("w");
                        object["spec"] = template["spec"].clone();
                    }
                }
                let mut text = String::new();
                if comment {
                    text.push_str("# a workload\n");
                }
                text.push_str(&serde_yaml::to_string(&object).unwrap());
                Doc {
                    text,
                    workload: true,
                }
            },
        )
    }

    fn manifest() -> impl Strategy<Value = (Vec<Doc>, bool, bool)> {
        (
            proptest::collection::vec(prop_oneof![config_map(), workload()], 1..6),
            any::<bool>(),
            any::<bool>(),
        )
    }

    fn documents(text: &str) -> Vec<Value> {
        serde_yaml::Deserializer::from_str(text)
            .map(|d| Value::deserialize(d).unwrap())
            .filter(|v| !v.is_null())
            .collect()
    }

    use serde::Deserialize;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn documents_not_injected_stay_byte_for_byte_and_uninject_restores_the_rest(
            (docs, crlf, bom) in manifest()
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            if bom {
                text.push('\u{feff}');
            }
            let rendered: Vec<String> = docs.iter().map(|d| d.text.replace('\n', eol)).collect();
            text.push_str(&rendered.join(&format!("---{eol}")));
            let injected = inject(&text, &builtin()).unwrap();
            let output = injected.to_yaml();
            for (doc, raw) in docs.iter().zip(&rendered) {
                if !doc.workload {
                    prop_assert!(output.contains(raw.trim_start_matches('\u{feff}')), "lost: {raw:?}\nin {output:?}");
                }
            }
            let restored = uninject(&output).unwrap().to_yaml();
            prop_assert_eq!(documents(&restored), documents(text.trim_start_matches('\u{feff}')));
        }
    }
}
