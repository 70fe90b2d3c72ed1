// The JS face as a page or any JS host loads it: the module `make web` writes to www/pkg
// (wasm-bindgen's `web` target), instantiated from its bytes. Its answers must be those of
// kube-inject (the golden corpus) and of policy.wasm (the host-tests fixtures).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import jsonpatch from "fast-json-patch";

import init, * as web from "../www/pkg/sidecar_injector_web.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const read = (path) => readFileSync(root + path, "utf8");
await init({ module_or_path: readFileSync(root + "web/www/pkg/sidecar_injector_web_bg.wasm") });

/** The status annotation's template hash, which changes with every template edit. */
const maskVersion = (text) => text.replace(/"version":"[^"]*"/g, '"version":"<version>"');

test("every case of kube-inject's golden corpus comes out as its golden file", () => {
  const dir = "kube-inject/tests/testdata/inject/";
  const cases = readdirSync(root + dir).filter((name) => name.endsWith(".yaml"));
  assert.ok(cases.length >= 20, `the corpus lost cases: ${cases.length}`);
  for (const name of cases) {
    const settings = {};
    for (const [ext, key] of [["config", "config"], ["mesh", "mesh"]]) {
      if (existsSync(`${root}${dir}${name}.${ext}`)) settings[key] = read(`${dir}${name}.${ext}`);
    }
    const result = web.injectManifest(read(dir + name), JSON.stringify(settings));
    assert.equal(maskVersion(result.yaml), maskVersion(read(`${dir}${name}.injected`)), name);
  }
});

test("the sleep app is injected once, and uninjected to a pod that injects the same again", () => {
  const sleep = read("samples/sleep/sleep.yaml");
  const injected = web.injectManifest(sleep);
  assert.equal(injected.changed, true);
  assert.match(injected.yaml, /name: istio-proxy/);
  assert.match(injected.yaml, /name: istio-init/);
  const again = web.injectManifest(injected.yaml);
  assert.equal(again.changed, false);
  assert.equal(again.yaml, injected.yaml);
  const removed = web.uninjectManifest(injected.yaml);
  assert.equal(removed.changed, true);
  assert.doesNotMatch(removed.yaml, /istio-proxy|istio-init|sidecar\.istio\.io\/status/);
  // Untouched documents keep their bytes: the Service comes first in the sample.
  const service = sleep.slice(0, sleep.indexOf("\n---"));
  assert.ok(removed.yaml.startsWith(service));
  assert.equal(web.injectManifest(removed.yaml).yaml, injected.yaml);
  assert.equal(web.uninjectManifest(sleep).changed, false);
  assert.equal(web.uninjectManifest(sleep).yaml, sleep);
});

test("skipped pods say why, as kube-inject does on stderr", () => {
  const dir = "kube-inject/tests/testdata/inject/";
  const result = web.injectManifest(read(dir + "daemonset-host-network.yaml"));
  assert.equal(result.changed, false);
  assert.ok(result.warnings.some((w) => w.includes("hostNetwork")), result.warnings.join("\n"));
});

test("settings in the policy's shape change the injection: policy disabled", () => {
  const result = web.injectManifest(read("samples/sleep/sleep.yaml"), "policy: disabled");
  assert.equal(result.changed, false);
  assert.ok(result.warnings.length > 0);
});

test("settings in the policy's shape change the injection: nativeSidecars, and the pod's annotation over it", () => {
  const sleep = read("samples/sleep/sleep.yaml");
  const native = web.injectManifest(sleep, "nativeSidecars: true");
  assert.match(native.yaml, /"initContainers":\["istio-init","istio-proxy"\]/);
  assert.match(native.yaml, /restartPolicy: Always/);
  // Injected again without the setting: back to the 0.5 sidecar, as if injected so at once.
  assert.equal(web.injectManifest(native.yaml).yaml, web.injectManifest(sleep).yaml);
  const annotated = sleep.replace("      labels:\n        app: sleep",
    "      labels:\n        app: sleep\n      annotations:\n        sidecar.istio.io/nativeSidecar: \"false\"");
  assert.notEqual(annotated, sleep);
  assert.doesNotMatch(web.injectManifest(annotated, "nativeSidecars: true").yaml, /restartPolicy/);
  assert.match(web.validateSettings("nativeSidecars: yes please") ?? "", /nativeSidecars/);
});

test("settings that read ConfigMaps make manifest injection say it used the embedded config", () => {
  const result = web.injectManifest(read("samples/sleep/sleep.yaml"), "configMaps: {}");
  assert.equal(result.changed, true);
  assert.ok(result.warnings.some((w) => w.includes("istio-system/istio-sidecar-injector")), result.warnings.join("\n"));
  assert.ok(!web.injectManifest(read("samples/sleep/sleep.yaml")).warnings.some((w) => w.includes("ConfigMaps")));
});

test("a manifest's Services stand for the cluster, wherever they are applied", () => {
  const review = read("samples/sleep/admission-review.json");
  const alone = JSON.parse(web.reviewAdmission(review)).response;
  assert.ok(alone.warnings.some((w) => w.includes("no Service in namespace default selects this pod")), alone.warnings);
  // sleep.yaml's Service names no namespace and its port is named `http`: nothing to warn of.
  const withApp = JSON.parse(web.reviewAdmission(review, undefined, read("samples/sleep/sleep.yaml"))).response;
  assert.equal(withApp.allowed, true);
  assert.deepEqual(withApp.warnings ?? [], []);
  assert.equal(withApp.patch, alone.patch);
  assert.throws(() => web.reviewAdmission(review, undefined, "a: [unclosed"), /YAML/i);
});

test("errors are thrown as JS errors with the core's message", () => {
  assert.throws(() => web.injectManifest("a: [unclosed"), (e) => e instanceof Error && /YAML/i.test(e.message));
  assert.throws(() => web.injectManifest(read("samples/sleep/sleep.yaml"), "policy: sometimes"),
    /policy must be `enabled` or `disabled`/);
  assert.throws(() => web.injectManifest(read("samples/sleep/sleep.yaml"), "template: '{{ ProxyConfig'"),
    (e) => e instanceof Error && /settings: field `template`/.test(e.message));
});

test("the requirements check finds what kube-inject check finds", () => {
  const failing = JSON.parse(web.checkManifest(read("samples/requirements/failing.yaml")));
  assert.deepEqual(failing.map((f) => f.requirement).sort(), ["appLabel", "namedPorts", "serviceAssociation"]);
  for (const finding of failing) {
    assert.equal(typeof finding.document, "number");
    assert.ok(finding.fix.length > 0);
  }
  assert.deepEqual(JSON.parse(web.checkManifest(read("samples/requirements/fixed.yaml"))), []);
});

test("settings are judged as the policy's validate_settings judges them", () => {
  assert.equal(web.validateSettings("{}"), undefined);
  assert.equal(web.validateSettings(""), undefined);
  assert.equal(web.validateSettings(`template: ${JSON.stringify(web.builtinTemplate())}`), undefined);
  assert.match(web.validateSettings("policy: sometimes"), /policy/);
  assert.match(web.validateSettings("[1, 2"), /not valid YAML/);
  assert.match(web.validateSettings("template: '{{ ProxyConfig'"), /template/);
  // Istio's Go templates are accepted as they are; what is outside the supported set is named.
  assert.equal(web.validateSettings(`template: ${JSON.stringify("containers:\n- name: istio-proxy\n  image: [[ .ProxyConfig.ConfigPath ]]\n")}`), undefined);
  assert.match(
    web.validateSettings(`template: ${JSON.stringify("containers:\n- name: x\n  image: [[ define \"a\" ]][[ end ]]\n")}`),
    /line 3, column 10: `define` is not supported/,
  );
});

test("an injection error carries its reason, as kube-inject prints it", () => {
  // A volume named like an injected one (a container so named is an override, merged).
  const clash = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: web\n      volumes:\n      - name: istio-envoy\n        emptyDir: {}\n";
  assert.throws(() => web.injectManifest(clash), (e) => {
    assert.match(e.message, /^document 1 \(Deployment web\): spec\.template: .*spec\.volumes entry "istio-envoy" that was not injected/);
    return true;
  });
});

test("a Go template in the settings injects as kube-inject injects with it", () => {
  const dir = "kube-inject/tests/testdata/inject/";
  const config = read(`${dir}istio-1.0-configmap.yaml.config`);
  const result = web.injectManifest(read("samples/sleep/sleep.yaml"), JSON.stringify({ config }));
  assert.equal(result.changed, true);
  assert.match(result.yaml, /image: docker\.io\/istio\/proxyv2:1\.0\.0/);
  assert.doesNotMatch(result.yaml, /restartPolicy/);
});

test("the seed's AdmissionReview gets the policy's answer", () => {
  const review = JSON.parse(read("samples/sleep/admission-review.json"));
  const response = JSON.parse(web.reviewAdmission(JSON.stringify(review)));
  assert.equal(response.kind, "AdmissionReview");
  assert.equal(response.response.uid, review.request.uid);
  assert.equal(response.response.allowed, true);
  assert.equal(response.response.patchType, "JSONPatch");
  const patch = JSON.parse(Buffer.from(response.response.patch, "base64").toString());
  const pod = jsonpatch.applyPatch(structuredClone(review.request.object), patch).newDocument;
  assert.deepEqual(pod.spec.containers.map((c) => c.name), ["sleep", "istio-proxy"]);
  assert.deepEqual(pod.spec.initContainers.map((c) => c.name), ["istio-init"]);

  const garbage = JSON.parse(web.reviewAdmission("{not json"));
  assert.equal(garbage.response.allowed, false);
  assert.match(garbage.response.status.message, /not valid JSON/);
});

/**
 * A fixture's canned host-call answers as the objects a cluster holds, or null when they cannot
 * be told as objects (a denied or malformed answer).
 */
function clusterObjects(answers) {
  const objects = [];
  for (const answer of answers) {
    if (!answer.response || typeof answer.response !== "object") return null;
    if (answer.operation === "list_resources_by_namespace") {
      if (!Array.isArray(answer.response.items)) return null;
      objects.push(...answer.response.items);
    } else if (answer.operation === "get_resource") {
      // A list, or another kind than the one asked for, is an answer no cluster object gives.
      if (Array.isArray(answer.response)) return null;
      if (answer.request?.kind && answer.response.kind !== answer.request.kind) return null;
      objects.push(answer.response);
    } else {
      return null;
    }
  }
  return objects;
}

// Every fixture whose cluster can be told as objects: the same request, settings and cluster
// must give policy.wasm's decision, message, warnings and patched pod.
test("host-tests fixtures give the policy's answers", () => {
  const dir = "host-tests/fixtures/";
  const ran = [];
  for (const name of readdirSync(root + dir).sort()) {
    const at = `${dir}${name}/`;
    if (!existsSync(root + at + "request.json")) continue;
    const answers = existsSync(root + at + "kubernetes.json") ? JSON.parse(read(at + "kubernetes.json")) : [];
    const objects = clusterObjects(answers);
    if (objects === null) continue;
    const expected = JSON.parse(read(at + "expected.json"));
    const settings = existsSync(root + at + "settings.json") ? read(at + "settings.json") : "{}";
    ran.push(name);
    if (expected.settings_valid === false) {
      const message = web.validateSettings(settings);
      assert.ok(message !== undefined, `${name}: settings were accepted`);
      if (expected.message_contains) assert.ok(message.includes(expected.message_contains), `${name}: ${message}`);
      continue;
    }
    assert.equal(web.validateSettings(settings), undefined, name);
    let request = JSON.parse(read(at + "request.json"));
    if (request.kind === "AdmissionReview") request = request.request;
    const review = { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request };
    const cluster = answers.length ? JSON.stringify({ kind: "List", items: objects }) : undefined;
    const answer = JSON.parse(web.reviewAdmission(JSON.stringify(review), settings, cluster)).response;
    if ("accepted" in expected) assert.equal(answer.allowed, expected.accepted, name);
    if ("mutated" in expected) assert.equal("patch" in answer, expected.mutated, name);
    if (expected.message_contains) assert.ok(answer.status.message.includes(expected.message_contains), `${name}: ${answer.status?.message}`);
    for (const warning of expected.warnings_contain ?? []) {
      assert.ok((answer.warnings ?? []).some((w) => w.includes(warning)), `${name}: no warning with ${warning}: ${answer.warnings}`);
    }
    if (expected.pod) {
      const patch = answer.patch ? JSON.parse(Buffer.from(answer.patch, "base64").toString()) : [];
      const pod = jsonpatch.applyPatch(structuredClone(request.object), patch).newDocument;
      assert.deepEqual(pod, expected.pod, name);
    }
  }
  for (const name of ["sleep-pod-injected", "config-from-configmaps", "requirements-enforce-two-services", "unknown-fields-kept",
    "go-template-from-configmaps", "go-template-in-settings", "invalid-settings-go-template-construct"]) {
    assert.ok(ran.includes(name), `${name} did not run`);
  }
  assert.ok(ran.length >= 35, `only ${ran.length} fixtures ran: ${ran}`);
});
