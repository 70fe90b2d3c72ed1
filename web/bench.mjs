// The JS face's cost per call under Node, on the seed's sleep app and on a 200-document
// manifest: `npm run bench` after `make web`. Results go to BENCHMARKS.md by hand.
import { readFileSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import init, * as web from "./www/pkg/sidecar_injector_web.js";

const wasm = new URL("./www/pkg/sidecar_injector_web_bg.wasm", import.meta.url);
const bytes = readFileSync(wasm);
let start = performance.now();
await init({ module_or_path: bytes });
const instantiate = performance.now() - start;

const sleep = readFileSync(new URL("../samples/sleep/sleep.yaml", import.meta.url), "utf8");
const many = Array.from({ length: 100 }, () => sleep).join("\n---\n");
const review = readFileSync(new URL("../samples/sleep/admission-review.json", import.meta.url), "utf8");

/** Median of `rounds` timings of `call`, in microseconds, after a warm-up. */
function median(call, rounds) {
  for (let i = 0; i < 20; i++) call();
  const times = [];
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    call();
    times.push((performance.now() - t) * 1000);
  }
  return times.sort((a, b) => a - b)[rounds >> 1];
}

console.log(`module: ${bytes.length} B, ${gzipSync(bytes, { level: 9 }).length} B gzipped`);
console.log(`compile + instantiate: ${instantiate.toFixed(1)} ms`);
console.log(`injectManifest(sleep.yaml): ${median(() => web.injectManifest(sleep).free(), 300).toFixed(0)} µs`);
console.log(`injectManifest(200 documents): ${median(() => web.injectManifest(many).free(), 30).toFixed(0)} µs`);
console.log(`reviewAdmission(sleep pod): ${median(() => web.reviewAdmission(review), 300).toFixed(0)} µs`);
console.log(`checkManifest(sleep.yaml): ${median(() => web.checkManifest(sleep), 300).toFixed(0)} µs`);
