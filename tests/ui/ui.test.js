// End-to-end tests of forklift's web UI in Debian's Chromium, driven by playwright-core (no
// browser download). Starts the real `forklift serve` on free ports, drives the page like a user,
// and checks the server's answers. Screenshots of each page go to $FORKLIFT_UI_SCREENSHOTS.
//
//   FORKLIFT_BIN=build/forklift FORKLIFT_MODELS=build/models node tests/ui/ui.test.js
"use strict";

const { chromium } = require("playwright-core");
const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const os = require("node:os");
const assert = require("node:assert/strict");

const TOKEN = "ui-test-token-0123456789abcdef";
const BIN = process.env.FORKLIFT_BIN;
const MODELS = process.env.FORKLIFT_MODELS;
const SHOTS = process.env.FORKLIFT_UI_SCREENSHOTS || path.join(os.tmpdir(), "forklift-ui-screenshots");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

function startServer(repository) {
  const proc = spawn(BIN, ["serve", "--model-repository", repository, "--host", "127.0.0.1",
                           "--port", "0", "--admin-port", "0", "--state-file", "none",
                           "--poll-seconds", "0.5"],
                     { env: { ...process.env, FORKLIFT_ADMIN_TOKEN: TOKEN }, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    const ports = {};
    let buffered = "";
    const timer = setTimeout(() => reject(new Error("forklift did not start")), 30000);
    proc.stdout.on("data", (chunk) => {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let event;
        try { event = JSON.parse(line); } catch (e) { continue; }
        if (event.event === "admin_listening") ports.admin = event.port;
        if (event.event === "listening") ports.data = event.port;
        if (event.event === "repository_loaded") {
          clearTimeout(timer);
          resolve({ proc, data: `http://127.0.0.1:${ports.data}`, admin: `http://127.0.0.1:${ports.admin}` });
        }
      }
    });
    proc.on("exit", (code) => reject(new Error(`forklift exited with ${code}`)));
  });
}

async function infer(server, body) {
  const res = await fetch(`${server.data}/infer`, { method: "POST", body: JSON.stringify(body) });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text);
}

const etaFeatures = () => JSON.parse(fs.readFileSync(path.join(MODELS, "eta", "2", "selftest.jsonl"), "utf8")
  .split("\n")[0]).features;

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const repository = fs.mkdtempSync(path.join(os.tmpdir(), "forklift-ui-"));
  fs.cpSync(MODELS, repository, { recursive: true });
  // eta can be retrained from the Training page: a train.yaml and fresh rides beside it.
  const made = spawnSync("/usr/bin/python3", [path.resolve(__dirname, "../../scripts/make_training_data.py"),
                                              path.join(repository, "eta", "data", "rides.jsonl"),
                                              "--rows", "2000", "--slower", "1.3"]);
  assert.equal(made.status, 0, String(made.stderr));
  fs.writeFileSync(path.join(repository, "eta", "train.yaml"),
                   "trainer: xgboost\nmode: continue\ndata: {files: [data/rides.jsonl], label: eta_seconds}\n" +
                   "rounds: 25\nparams: {max_depth: 4, eta: 0.1}\nevaluation: {metric: rmse, max_regression: 0.05}\n");
  const server = await startServer(repository);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const results = [];
  const test = async (name, fn) => {
    try {
      await fn();
      results.push(`ok   ${name}`);
    } catch (e) {
      results.push(`FAIL ${name}: ${e.stack || e}`);
    }
  };
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on("dialog", (dialog) => dialog.accept());  // the confirmations

    await test("the models page lists the example models", async () => {
      await page.goto(`${server.admin}/ui/`);
      await page.waitForSelector("#models-table tbody tr[data-model='eta']");
      const ids = await page.$$eval("#models-table tbody tr", (rows) => rows.map((r) => r.dataset.model));
      const expected = fs.readdirSync(MODELS).filter((d) => fs.statSync(path.join(MODELS, d)).isDirectory()).sort();
      assert.deepEqual(ids, expected);
      const eta = await page.textContent("#models-table tr[data-model='eta']");
      assert.match(eta, /v2 ready/);
      assert.match(eta, /24\/24/);
      await page.screenshot({ path: path.join(SHOTS, "models.png"), fullPage: true });
    });

    await test("a wrong token is refused with a message", async () => {
      await page.fill("#token", "not-the-token");
      await page.click("#sign-in");
      await page.waitForSelector("#message.error");
      assert.match(await page.textContent("#message"), /Sign-in refused: missing or wrong admin token/);
      assert.equal(await page.isVisible("#sign-out"), false);
      assert.equal(page.url().includes("not-the-token"), false);
    });

    await test("a promote clicked in the UI changes what /infer answers", async () => {
      assert.equal((await infer(server, { model_id: "eta", features: etaFeatures() })).version, 2);
      await page.fill("#actor", "ui-tester");
      await page.fill("#token", TOKEN);
      await page.press("#token", "Enter");  // the keyboard works
      await page.waitForSelector("#sign-out:visible");
      await page.goto(`${server.admin}/ui/#/models/eta`);
      await page.waitForSelector("#versions-table button[data-action='promote-1']:not([disabled])");
      await page.click("button[data-action='promote-1']");
      await page.waitForSelector("#message.ok");
      assert.match(await page.textContent("#message"), /Done: Send all of eta's traffic to version 1/);
      assert.equal((await infer(server, { model_id: "eta", features: etaFeatures() })).version, 1);
      await page.waitForFunction(() => document.querySelector("main").textContent.includes("Traffic: v1: 1"));
      assert.equal(page.url().includes(TOKEN), false);
    });

    await test("charts render with data after some load", async () => {
      const features = etaFeatures();
      for (let i = 0; i < 150; ++i) await infer(server, { model_id: "eta", features });
      await page.waitForFunction(() => {
        const svg = document.querySelector("figure[data-chart='Requests per second'] svg");
        return svg && /rps [1-9]/.test(svg.getAttribute("aria-label")) ||
               [...document.querySelectorAll("figure[data-chart='Requests per second'] polyline")]
                 .some((l) => l.getAttribute("points").split(" ").some((p) => Number(p.split(",")[1]) < 120));
      }, null, { timeout: 10000 });
      const lines = await page.$$eval("svg.chart polyline", (ls) => ls.map((l) => l.getAttribute("points").split(" ").length));
      assert.ok(lines.length >= 4 && lines.every((n) => n >= 2), JSON.stringify(lines));
      await page.screenshot({ path: path.join(SHOTS, "model-detail.png"), fullPage: true });
    });

    await test("the audit log shows the promote", async () => {
      await page.click("#nav-audit");
      await page.waitForSelector("#audit-table tbody tr td");
      const first = await page.textContent("#audit-table tbody tr");
      assert.match(first, /eta/);
      assert.match(first, /promote/);
      assert.match(first, /ui-tester/);  // who acted, as typed at sign-in
      await page.screenshot({ path: path.join(SHOTS, "audit.png"), fullPage: true });
    });

    await test("a rollout started from the model page shows its timeline and can be aborted", async () => {
      await page.goto(`${server.admin}/ui/#/models/eta`);
      await page.waitForSelector("button[data-action='rollout-start']:not([disabled])");
      await page.fill("#rollout-version", "2");
      await page.fill("#rollout-steps", "50, 100");
      await page.fill("#rollout-hold", "3600");
      await page.click("button[data-action='rollout-start']");
      await page.waitForSelector("#rollout-summary[data-phase='running']");
      assert.match(await page.textContent("#rollout-summary"), /Version 2 replacing version 1: running, stage shadow/);
      assert.match(await page.textContent("#rollout-timeline tbody"), /started/);
      await page.screenshot({ path: path.join(SHOTS, "rollout.png"), fullPage: true });
      await page.click("button[data-action='rollout-abort']");
      await page.waitForSelector("#rollout-summary[data-phase='aborted']");
      assert.match(await page.textContent("#rollout-timeline tbody tr"), /aborted/);
      assert.equal((await infer(server, { model_id: "eta", features: etaFeatures() })).version, 1);
      // Quality and drift sections say what they need when there is nothing to show.
      assert.match(await page.textContent("#quality-table"), /No feedback labels yet/);
      assert.ok(await page.isVisible("#drift-table"));
    });

    await test("a training job run from the Training page publishes a version with its lineage", async () => {
      await page.click("#nav-training");
      await page.waitForSelector("#jobs-table");
      assert.match(await page.textContent("#jobs-table"), /No training jobs yet/);
      await page.fill("#job-model", "eta");
      await page.click("button[data-action='job-run']");
      await page.waitForSelector("#message.ok");
      await page.waitForSelector("#jobs-table tr[data-job] .badge.ready", { timeout: 30000 });
      const row = await page.textContent("#jobs-table tbody tr");
      assert.match(row, /published version 3 of eta/);
      await page.click("#jobs-table tbody tr a[href^='#/training/']");
      await page.waitForSelector("#job-summary[data-state='published']");
      assert.match(await page.textContent("#job-summary"), /Held-out rmse: [0-9.]+ \(parent [0-9.]+\)/);
      const points = await page.$eval("figure[data-chart^='Held-out'] polyline", (l) => l.getAttribute("points").split(" ").length);
      assert.equal(points, 25);
      assert.match(await page.textContent("#job-log"), /published version 3 of eta/);
      await page.screenshot({ path: path.join(SHOTS, "training.png"), fullPage: true });
      // Its rollout starts from the job's row.
      const id = await page.$eval("#jobs-table tbody tr", (r) => r.dataset.job);
      await page.click(`button[data-action='job-rollout-${id}']`);
      await page.waitForSelector("#message.ok");
      const rollout = await (await fetch(`${server.admin}/admin/models/eta/rollout`)).json();
      assert.equal(rollout.rollout.candidate, 3);
      assert.equal(rollout.rollout.phase, "running");
      // The model page says where version 3 came from.
      await page.goto(`${server.admin}/ui/#/models/eta`);
      // Production was version 1 (promoted above): the job started from it.
      await page.waitForFunction(() => /from v1: xgboost continue on 2000 rows/.test(
        (document.querySelector("#versions-table tr[data-version='3']") || {}).textContent || ""));
      await page.click("button[data-action='rollout-abort']");
      await page.waitForSelector("#rollout-summary[data-phase='aborted']");
    });

    await test("a server that goes away is said so, and the page comes back", async () => {
      await page.click("#nav-models");
      server.proc.kill("SIGTERM");
      await new Promise((r) => server.proc.once("exit", r));
      await page.waitForSelector("#connection:visible", { timeout: 10000 });
      assert.match(await page.textContent("#connection"), /not answering/);
      assert.ok(await page.isVisible("#models-table"));  // the last data stays
      await page.screenshot({ path: path.join(SHOTS, "server-down.png"), fullPage: true });
    });
  } finally {
    await browser.close();
    if (server.proc.exitCode === null) server.proc.kill("SIGTERM");
    fs.rmSync(repository, { recursive: true, force: true });
  }
  console.log(results.join("\n"));
  console.log(`screenshots: ${SHOTS}`);
  if (results.some((r) => r.startsWith("FAIL"))) process.exit(1);
}

main().catch((e) => { console.error(e); process.exit(1); });
