// The playground page in a real browser: served from www/ as a static site, clicked as a person
// would. Needs Chromium (CHROMIUM, or /usr/bin/chromium); without it the test is skipped and says so.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { existsSync, readFileSync, statSync } from "node:fs";
import { extname, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const www = fileURLToPath(new URL("../www/", import.meta.url));
const browserPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

/** Serves www/ on a free loopback port; `.wasm` as application/wasm, which streaming needs. */
async function serve() {
  const server = createServer((request, response) => {
    try {
      const path = normalize(decodeURIComponent(new URL(request.url, "http://x").pathname)).replace(/^\/+/, "");
      const file = www + (path === "" ? "index.html" : path);
      if (path.startsWith("..") || !existsSync(file) || !statSync(file).isFile()) {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
      response.end(readFileSync(file));
    } catch (error) {
      response.writeHead(400).end(String(error));
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

test("the playground injects, checks and reports errors in Chromium", { skip: !existsSync(browserPath) && `no Chromium at ${browserPath}` }, async () => {
  const server = await serve();
  const browser = await chromium.launch({
    executablePath: browserPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  try {
    const page = await browser.newPage();
    const problems = [];
    page.on("pageerror", (e) => problems.push(e.message));
    page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction(() => document.getElementById("manifest").value.includes("kind: Deployment"));

    await page.click("#inject");
    const injected = await page.textContent("#output");
    assert.match(injected, /- name: istio-proxy/);
    assert.match(injected, /sidecar\.istio\.io\/status/);
    assert.equal(await page.textContent("#error"), "");

    await page.click("#reuse");
    await page.click("#uninject");
    assert.doesNotMatch(await page.textContent("#output"), /istio-proxy/);

    await page.click("#check");
    assert.match(await page.textContent("#output"), /no Service in namespace default selects this pod/);

    await page.fill("#settings", "policy: sometimes");
    await page.click("#inject");
    assert.match(await page.textContent("#error"), /policy must be `enabled` or `disabled`/);

    await page.click("#template");
    assert.match(await page.inputValue("#settings"), /^template: \|\n {2}\S/);
    await page.click("#validate");
    assert.match(await page.textContent("#notes"), /would accept these settings/);

    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
    server.close();
  }
});
