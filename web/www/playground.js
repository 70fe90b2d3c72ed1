// The playground's glue: text areas in, the JS face's answers out. Every decision is the core's.
import init, {
  injectManifest,
  uninjectManifest,
  checkManifest,
  validateSettings,
  builtinTemplate,
} from "./pkg/sidecar_injector_web.js";

const SLEEP = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: sleep
spec:
  replicas: 1
  selector:
    matchLabels:
      app: sleep
  template:
    metadata:
      labels:
        app: sleep
    spec:
      containers:
      - name: sleep
        image: tutum/curl
        command: ["/bin/sleep", "infinity"]
`;

const $ = (id) => document.getElementById(id);

function show(text, notes = [], error = "") {
  $("output").textContent = text;
  $("error").textContent = error;
  $("notes").replaceChildren(
    ...notes.map((note) => Object.assign(document.createElement("li"), { textContent: note })),
  );
}

/** Runs one action; a thrown error (the core's message) is shown, never swallowed. */
function run(action) {
  try {
    action();
  } catch (error) {
    show("", [], error instanceof Error ? error.message : String(error));
  }
}

function showManifest(result) {
  const notes = [...result.warnings];
  if (!result.changed) notes.push("No document changed.");
  show(result.yaml, notes);
  result.free();
}

await init();
$("manifest").value = SLEEP;
$("inject").onclick = () => run(() => showManifest(injectManifest($("manifest").value, $("settings").value)));
$("uninject").onclick = () => run(() => showManifest(uninjectManifest($("manifest").value)));
$("check").onclick = () =>
  run(() => {
    const findings = JSON.parse(checkManifest($("manifest").value, $("settings").value));
    show(
      findings.map((f) => `document ${f.document}: ${f.object}: ${f.message}; ${f.fix}`).join("\n"),
      [findings.length ? `${findings.length} finding(s)` : "No findings: the requirements are met."],
    );
  });
$("validate").onclick = () =>
  run(() => {
    const message = validateSettings($("settings").value);
    show("", [message ?? "The policy would accept these settings."]);
  });
$("reuse").onclick = () => {
  if ($("output").textContent) $("manifest").value = $("output").textContent;
};
$("template").onclick = () => {
  $("settings").value = `template: |\n${builtinTemplate().replace(/^(?=.)/gm, "  ")}`;
  show("", ["The built-in template is in the settings: edit it, then Inject."]);
};
