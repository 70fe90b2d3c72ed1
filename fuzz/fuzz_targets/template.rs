//! Template compile and render on arbitrary templates, in both dialects, over a pod whose
//! values are adversarial: compile and render errors are fine, a panic is not. The first byte
//! picks the syntax (recognised, upon, Go); the rest is the template text. A template that
//! renders must render the same again (the memo agrees with the first rendering).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use sidecar_injector::MeshConfig;
use sidecar_injector::template::{MeshData, SidecarTemplate, TemplateData, TemplateSyntax};

fuzz_target!(|data: &[u8]| {
    let Some((choice, text)) = data.split_first() else {
        return;
    };
    let syntax = match choice % 3 {
        0 => None,
        1 => Some(TemplateSyntax::Upon),
        _ => Some(TemplateSyntax::Go),
    };
    let text = String::from_utf8_lossy(text);
    let Ok(template) = SidecarTemplate::compile_as(&text, syntax) else {
        return;
    };
    let pod = json!({
        "metadata": {"name": "p", "labels": {"app": "a\n- b: c"},
                     "annotations": {"sidecar.istio.io/proxyImage": "]] {{ x }} [[ .Y ]]\n---\n"}},
        "spec": {"containers": [{"name": "a", "image": "a", "ports": [{"containerPort": 80}]}, {"name": "b"}]}
    });
    let mesh = MeshData::new(&MeshConfig::default());
    let data = TemplateData::new(&pod, Some("default"), &mesh);
    let first = template.render_entries(&data);
    let second = template.render_entries(&data);
    assert_eq!(first.is_ok(), second.is_ok());
    if let (Ok(a), Ok(b)) = (first, second) {
        assert_eq!(a, b, "a remembered rendering differs from the first");
    }
});
