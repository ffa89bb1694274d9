// forklift's web UI: models, a model's detail with live charts and actions, training jobs, and
// the audit log.
// It talks to the admin API of the server that serves it (same origin). The admin token is kept
// in this tab's sessionStorage and sent only in the Authorization header: never in a URL.
"use strict";

const POLL_MS = 2000;
const state = { models: [], series: {}, detail: {}, audit: [], jobs: null, job: {}, logs: {},
                online: true, timer: null };

const $ = (id) => document.getElementById(id);
const token = () => sessionStorage.getItem("forklift-token") || "";
// Who makes the changes, for the audit log (the admin token says only that one may).
const actor = () => sessionStorage.getItem("forklift-actor") || "web-ui";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function show(message, kind = "error") {
  const box = $("message");
  box.textContent = message;
  box.className = kind;
  box.hidden = !message;
}

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  // Sent on reads too: without it the admin API leaves out why versions failed.
  if (token()) headers.Authorization = "Bearer " + token();
  headers["X-Forklift-Actor"] = actor();
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new Error("the forklift server is not answering");
  }
  const text = await res.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch (e) { data = { error: text }; }
  if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
  return data;
}

// --- Data ------------------------------------------------------------------------------------

async function refresh() {
  try {
    const [models, series] = await Promise.all([api("GET", "/admin/models"),
                                                api("GET", "/admin/timeseries?seconds=300")]);
    state.models = models.models;
    state.budget = models.memory_budget;
    state.series = series.models;
    // The open model's page also shows its shadow comparisons, live quality and drift.
    const open = (location.hash.match(/^#\/?models\/(.+)$/) || [])[1];
    if (open) state.detail[decodeURIComponent(open)] = await api("GET", `/admin/models/${open}`);
    // The training page: every job, and the open one's metric per round and log.
    if (/^#\/?training/.test(location.hash)) {
      try { state.jobs = (await api("GET", "/admin/jobs")).jobs; } catch (e) { state.jobs = e.message; }
      const job = (location.hash.match(/^#\/?training\/(.+)$/) || [])[1];
      if (job && Array.isArray(state.jobs)) {
        state.job[job] = await api("GET", `/admin/jobs/${job}`);
        try {
          state.logs[job] = (await api("GET", `/admin/jobs/${job}/logs`)).lines;
        } catch (e) {
          state.logs[job] = [`(${e.message})`];  // the log needs the admin token
        }
      }
    }
    setOnline(true);
  } catch (e) {
    setOnline(false);
  }
  render();
}

function setOnline(online) {
  state.online = online;
  const box = $("connection");
  box.hidden = online;
  if (!online) {
    box.textContent = `The forklift server is not answering. Showing the last data; retrying every ${POLL_MS / 1000} s.`;
  }
}

function summary(model) {
  // The last 10 seconds of the model's series.
  const points = (state.series[model] || []).slice(-10);
  const requests = points.reduce((s, p) => s + p.rps, 0);
  const errors = points.reduce((s, p) => s + p.errors, 0);
  const busy = points.filter((p) => p.rps > 0);
  const weighted = (key) => busy.length === 0 ? null
    : busy.reduce((s, p) => s + p[key] * p.rps, 0) / busy.reduce((s, p) => s + p.rps, 0);
  return { rps: points.length ? requests / points.length : 0,
           errorRate: requests ? errors / requests : 0,
           p50: weighted("p50_ms"), p99: busy.length ? Math.max(...busy.map((p) => p.p99_ms)) : null };
}

const ms = (v) => v === null ? "–" : `${v.toFixed(v < 10 ? 2 : 1)} ms`;
const pct = (v) => `${(100 * v).toFixed(v && v < 0.01 ? 2 : 1)}%`;

function describeDeployment(d) {
  const routes = d.routes.length === 0 ? "policy (newest version)"
    : d.routes.map((r) => `v${r.version}: ${r.weight}`).join(", ");
  const shadows = d.shadows.map((s) => `v${s.version} at ${Math.round(s.sample_rate * 100)}%`).join(", ");
  return { routes, shadows: shadows || "none" };
}

// --- Pages -----------------------------------------------------------------------------------

function render() {
  const route = location.hash.replace(/^#\/?/, "") || "models";
  for (const [id, prefix] of [["nav-models", "models"], ["nav-training", "training"], ["nav-audit", "audit"]]) {
    if (route.startsWith(prefix)) $(id).setAttribute("aria-current", "page");
    else $(id).removeAttribute("aria-current");
  }
  const page = $("page");
  if (route === "audit") return renderAudit(page);
  if (route === "training" || route.startsWith("training/")) {
    return keepingInputs(page, () => buildTrainingPage(page, route.slice("training/".length)));
  }
  const detail = route.match(/^models\/(.+)$/);
  if (detail) return renderModel(page, decodeURIComponent(detail[1]));
  renderModels(page);
}

function renderModels(page) {
  const rows = state.models.map((m) => {
    const s = summary(m.model_id);
    const d = describeDeployment(m.deployment);
    const tests = m.versions.filter((v) => v.selftest)
      .map((v) => `v${v.version}: ${v.selftest.passed}/${v.selftest.cases}`).join(", ");
    return el("tr", { "data-model": m.model_id },
      el("td", {}, el("a", { href: `#/models/${encodeURIComponent(m.model_id)}` }, m.model_id)),
      el("td", {}, m.versions.map((v) => el("span", { class: `badge ${v.state}`, title: v.message || v.state },
                                          `v${v.version} ${v.state}`))),
      el("td", {}, tests || "–"),
      el("td", {}, m.unloaded ? "unloaded" : d.routes),
      el("td", {}, d.shadows),
      el("td", { class: "num" }, s.rps.toFixed(1)),
      el("td", { class: "num" }, pct(s.errorRate)),
      el("td", { class: "num" }, ms(s.p50)),
      el("td", { class: "num" }, ms(s.p99)));
  });
  page.replaceChildren(
    el("h2", {}, "Models"),
    el("table", { id: "models-table" },
      el("thead", {}, el("tr", {}, ["Model", "Versions", "Self-tests", "Traffic", "Shadows", "Requests/s",
                                    "Errors", "p50", "p99"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 9 }, "No models yet.")))),
    el("p", { class: "muted" }, "Rates and latencies over the last 10 seconds; refreshed every 2 seconds."),
    state.budget ? el("p", { id: "memory-budget" },
      `Memory budget: ${(state.budget.used_bytes / 1048576).toFixed(1)} of ${(state.budget.budget_bytes / 1048576).toFixed(0)} MB in use · ` +
      `${state.budget.cold_loads} loaded on demand · ${state.budget.evictions} evicted · ` +
      `${state.budget.cold_start_requests} requests waited for a load (${state.budget.cold_start_timeouts} timed out)`) : null);
}

function chart(title, points, keys, unit, span = `last ${points.length} s`) {
  const width = 600, height = 150, pad = 28;
  const values = points.flatMap((p) => keys.map((k) => p[k]));
  const max = Math.max(1e-9, ...values);
  const x = (i) => pad + (i / Math.max(1, points.length - 1)) * (width - pad - 4);
  const y = (v) => height - 16 - (v / max) * (height - 26);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  const last = points.length ? keys.map((k) => `${k} ${points[points.length - 1][k].toFixed(2)}`).join(", ") : "no data";
  svg.setAttribute("aria-label", `${title}: ${last}`);
  const axis = document.createElementNS(ns, "text");
  axis.setAttribute("x", 2); axis.setAttribute("y", 16);
  axis.textContent = `${max.toFixed(max < 10 ? 2 : 0)} ${unit}`;
  svg.append(axis);
  keys.forEach((k, n) => {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("class", `line${n + 1}`);
    line.setAttribute("fill", "none");
    line.setAttribute("stroke-width", "2");
    line.setAttribute("points", points.map((p, i) => `${x(i).toFixed(1)},${y(p[k]).toFixed(1)}`).join(" "));
    svg.append(line);
  });
  return el("figure", { "data-chart": title }, el("figcaption", {}, `${title} (${span})`), svg);
}

// The page is rebuilt every refresh: what a user is typing (and where) must survive it.
function keepingInputs(page, build) {
  const values = Object.fromEntries([...page.querySelectorAll("input[id]")].map((i) => [i.id, i.value]));
  const focused = document.activeElement && document.activeElement.id;
  build();
  for (const [id, value] of Object.entries(values)) {
    const input = document.getElementById(id);
    if (input && input.type !== "password") input.value = value;
  }
  if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
}

function renderModel(page, id) {
  keepingInputs(page, () => buildModelPage(page, id));
}

function buildModelPage(page, id) {
  const m = state.models.find((x) => x.model_id === id);
  if (!m) {
    page.replaceChildren(el("h2", {}, id), el("p", {}, state.online ? "No such model." : "Waiting for the server…"));
    return;
  }
  const points = state.series[id] || [];
  const d = describeDeployment(m.deployment);
  const signedIn = Boolean(token());
  const act = (label, confirmText, method, path, body, attrs = {}) =>
    el("button", { type: "button", disabled: !signedIn, title: signedIn ? confirmText : "Sign in with the admin token first",
                   onclick: () => perform(confirmText, method, path, body), ...attrs }, label);
  const versions = m.versions.map((v) => {
    const serving = m.serving.includes(v.version);
    const shadowing = m.deployment.shadows.some((s) => s.version === v.version);
    const failures = v.selftest && v.selftest.failures.length
      ? el("ul", {}, v.selftest.failures.map((f) => el("li", {}, typeof f === "string" ? f : JSON.stringify(f)))) : null;
    return el("tr", { "data-version": v.version },
      el("td", {}, `v${v.version}`),
      el("td", {}, el("span", { class: `badge ${v.state}` }, v.state), v.message ? el("div", { class: "muted" }, v.message) : null),
      el("td", {}, v.selftest ? `${v.selftest.passed}/${v.selftest.cases} passed` : "–", failures),
      el("td", { class: "num" }, v.load_seconds ? `${v.load_seconds.toFixed(2)} s` : "–"),
      el("td", { class: "num" }, v.in_memory && v.memory_bytes ? `${(v.memory_bytes / 1048576).toFixed(1)} MB`
                                 : v.on_demand ? "on demand" : "–"),
      el("td", { class: "engine", title: v.engine_note || "" }, v.engine || "–"),
      el("td", { class: "lineage" }, describeLineage((state.detail[id] || {}).lineage, v.version)),
      el("td", {},
        act(`Promote v${v.version}`, `Send all of ${id}'s traffic to version ${v.version}?`, "POST",
            `/admin/models/${encodeURIComponent(id)}/promote`, { version: v.version }, { "data-action": `promote-${v.version}` }),
        " ",
        shadowing
          ? act(`Stop shadow`, `Stop shadowing ${id} with version ${v.version}?`, "PUT",
                `/admin/models/${encodeURIComponent(id)}/deployment`,
                { routes: m.deployment.routes, shadows: m.deployment.shadows.filter((s) => s.version !== v.version) })
          : act(`Shadow`, `Copy 10% of ${id}'s requests to version ${v.version} and compare?`, "PUT",
                `/admin/models/${encodeURIComponent(id)}/deployment`,
                { routes: m.deployment.routes, shadows: [...m.deployment.shadows, { version: v.version, sample_rate: 0.1 }] },
                { disabled: !signedIn || (serving && m.deployment.routes.some((r) => r.version === v.version)) })));
  });
  const detail = state.detail[id] || {};
  const comparisons = (detail.shadow_comparisons || []).map((c) => {
    const rows = c.agree + c.disagree;
    return el("tr", {}, el("td", {}, `v${c.primary_version} vs v${c.shadow_version}`),
      el("td", { class: "num" }, rows ? pct(c.agree / rows) : "–"),
      el("td", { class: "num" }, rows), el("td", { class: "num" }, c.errors), el("td", { class: "num" }, c.dropped));
  });
  const splitInput = el("input", { id: "split", "aria-label": "Traffic split, e.g. 1=90, 2=10",
                                   placeholder: "1=90, 2=10", size: 20 });
  page.replaceChildren(
    el("h2", {}, `Model ${id}`),
    el("p", {}, `Traffic: ${m.unloaded ? "unloaded" : d.routes}. Shadows: ${d.shadows}.`),
    el("div", { class: "charts" },
      chart("Requests per second", points, ["rps"], "req/s"),
      chart("Latency p50 and p99", points, ["p50_ms", "p99_ms"], "ms"),
      chart("Errors per second", points, ["errors"], "err/s")),
    el("h2", {}, "Versions"),
    el("table", { id: "versions-table" },
      el("thead", {}, el("tr", {}, ["Version", "State", "Self-tests", "Load", "Memory", "Engine", "Made by", "Actions"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, versions)),
    el("div", { class: "inline" },
      act("Roll back", `Return ${id} to the deployment before the last change?`, "POST",
          `/admin/models/${encodeURIComponent(id)}/rollback`, undefined, { "data-action": "rollback", disabled: !signedIn || !m.can_roll_back }),
      " ",
      m.unloaded
        ? act("Load", `Load ${id} again (loads and self-tests its versions)?`, "POST", `/v2/repository/models/${encodeURIComponent(id)}/load`, undefined)
        : act("Unload", `Unload every version of ${id}? It stops answering until loaded again.`, "POST",
              `/v2/repository/models/${encodeURIComponent(id)}/unload`, undefined)),
    el("form", { class: "inline", onsubmit: (e) => {
        e.preventDefault();
        const routes = [];
        for (const part of splitInput.value.split(",").map((s) => s.trim()).filter(Boolean)) {
          const match = part.match(/^v?(\d+)\s*=\s*(\d+)$/);
          if (!match) return show(`"${part}" is not VERSION=WEIGHT (for example 1=90, 2=10).`);
          routes.push({ version: Number(match[1]), weight: Number(match[2]) });
        }
        if (!routes.length) return show("Give at least one VERSION=WEIGHT.");
        perform(`Split ${id}'s traffic as ${routes.map((r) => `v${r.version} ${r.weight}`).join(", ")}?`, "PUT",
                `/admin/models/${encodeURIComponent(id)}/deployment`, { routes, shadows: m.deployment.shadows });
      } },
      el("label", { for: "split" }, "A/B split"), splitInput,
      el("button", { type: "submit", disabled: !signedIn }, "Set split")),
    ...rolloutSection(m, act),
    el("h2", {}, "Shadow agreement"),
    comparisons.length
      ? el("table", {}, el("thead", {}, el("tr", {}, ["Pair", "Agreement", "Rows compared", "Shadow errors", "Dropped"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, comparisons))
      : el("p", { class: "muted" }, "No shadow has compared anything yet."),
    ...qualitySection(detail),
    ...driftSection(detail));
}

const fixed = (v, digits = 3) => (typeof v === "number" && Number.isFinite(v)) ? v.toFixed(digits) : "–";
const table = (id, headers, rows, empty) => el("table", id ? { id } : {},
  el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
  el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: headers.length }, empty))));

// The model's rollout (current or last): its stage, the controls, and the timeline of decisions
// with the signals each was taken on.
function rolloutSection(m, act) {
  const id = m.model_id;
  const r = m.rollout;
  const path = `/admin/models/${encodeURIComponent(id)}/rollout`;
  const versionInput = el("input", { id: "rollout-version", "aria-label": "Version to roll out", size: 4,
                                     placeholder: "newest" });
  const stepsInput = el("input", { id: "rollout-steps", "aria-label": "Canary steps in percent", size: 14,
                                   placeholder: "1, 10, 50, 100" });
  const holdInput = el("input", { id: "rollout-hold", "aria-label": "Hold seconds per step", size: 6,
                                  placeholder: "60" });
  const start = el("form", { class: "inline", onsubmit: (e) => {
      e.preventDefault();
      const body = {};
      if (versionInput.value.trim()) body.version = Number(versionInput.value.trim());
      const canary = {};
      if (stepsInput.value.trim()) canary.steps = stepsInput.value.split(",").map((x) => Number(x.trim()));
      if (holdInput.value.trim()) canary.hold_seconds = Number(holdInput.value.trim());
      if (Object.keys(canary).length) body.policy = { canary };
      perform(`Start a rollout of ${id} ${body.version ? "version " + body.version : "(newest version)"}?`,
              "POST", path, body);
    } },
    el("label", { for: "rollout-version" }, "Roll out version"), versionInput,
    el("label", { for: "rollout-steps" }, "steps %"), stepsInput,
    el("label", { for: "rollout-hold" }, "hold s"), holdInput,
    el("button", { type: "submit", disabled: !token() || (r && (r.phase === "running" || r.phase === "paused")),
                   "data-action": "rollout-start" }, "Start rollout"));
  if (!r) return [el("h2", {}, "Rollout"), el("p", { class: "muted" }, "No rollout yet."), start];
  const active = r.phase === "running" || r.phase === "paused";
  const controls = active ? el("div", { class: "inline" },
    r.phase === "running"
      ? act("Pause", `Pause the rollout of ${id} (guardrails keep watching)?`, "POST", `${path}/pause`, undefined, { "data-action": "rollout-pause" })
      : act("Resume", `Resume the rollout of ${id}?`, "POST", `${path}/resume`, undefined, { "data-action": "rollout-resume" }),
    " ",
    act("Abort", `Abort the rollout of ${id} and return traffic to version ${r.baseline}?`, "POST", `${path}/abort`, undefined, { "data-action": "rollout-abort" }))
    : start;
  const signals = (s) => Object.entries(s || {}).map(([k, v]) => `${k.replace(/_/g, " ")} ${fixed(v, v % 1 ? 3 : 0)}`).join(", ");
  const timeline = [...r.timeline].reverse().map((t) =>
    el("tr", { class: t.action === "rolled_back" ? "bad" : "" }, el("td", {}, t.time), el("td", {}, t.stage), el("td", {}, t.action.replace("_", " ")),
       el("td", {}, t.actor), el("td", {}, t.reason), el("td", { class: "muted" }, signals(t.signals))));
  return [
    el("h2", {}, "Rollout"),
    el("p", { id: "rollout-summary", "data-phase": r.phase },
       `Version ${r.candidate} replacing version ${r.baseline}: ${r.phase.replace("_", " ")}`,
       active ? `, stage ${r.stage_name} (${r.canary_percent}% of traffic)` : "",
       r.reason ? `. ${r.reason}` : "."),
    controls,
    table("rollout-timeline", ["Time (UTC)", "Stage", "Decision", "Who", "Why", "Signals"], timeline, "No decisions yet.")];
}

// Live quality from feedback labels, per version (over the server's quality window).
function qualitySection(detail) {
  const rows = (detail.quality || []).map((q) => el("tr", {},
    el("td", {}, `v${q.version}`), el("td", {}, q.task.replace("_", " ")), el("td", { class: "num" }, q.window_labels),
    el("td", { class: "num" }, typeof q.coverage === "number" ? pct(q.coverage) : "–"),
    el("td", { class: "num" }, fixed(q.mae)), el("td", { class: "num" }, fixed(q.bias)),
    el("td", { class: "num" }, fixed(q.log_loss)), el("td", { class: "num" }, q.accuracy === undefined ? "–" : pct(q.accuracy)),
    el("td", { class: "num" }, fixed(q.auc))));
  return [el("h2", {}, "Live quality"),
          table("quality-table", ["Version", "Task", "Labels", "Coverage", "MAE", "Bias", "Log loss", "Accuracy", "AUC"], rows,
                "No feedback labels yet (POST /feedback; the version's model.yaml must declare quality:).")];
}

// Drift of the last hour against each version's profile.json, largest first.
function driftSection(detail) {
  const rows = (detail.drift || []).flatMap((d) => [...d.features].sort((a, b) => b.psi - a.psi).map((f) =>
    el("tr", { class: f.psi > 0.25 ? "bad" : "" }, el("td", {}, `v${d.version}`), el("td", {}, f.feature),
       el("td", { class: "num" }, fixed(f.psi)), el("td", { class: "num" }, pct(f.missing_rate)),
       el("td", { class: "num" }, pct(f.reference_missing_rate)), el("td", { class: "num" }, d.rows))));
  const outputs = (detail.drift || []).filter((d) => d.output_psi !== null && d.output_psi !== undefined)
    .map((d) => `v${d.version}: ${fixed(d.output_psi)}`).join(", ");
  return [el("h2", {}, "Drift"),
          table("drift-table", ["Version", "Feature", "PSI", "Missing now", "Missing in profile", "Rows"], rows,
                "No version has a profile.json (forklift profile writes one)."),
          el("p", { class: "muted" }, `Output PSI: ${outputs || "–"}. Over the last hour; above 0.25 is a large shift.`)];
}

// Where a version came from, when a training job or a snapshot made it (its lineage.json).
function describeLineage(lineage, version) {
  const l = (lineage || {})[version];
  if (!l) return "–";
  const from = l.parent_version ? `from v${l.parent_version}` : "first version";
  if (l.mode === "snapshot") return `${from}: online snapshot after ${l.updates} labels`;
  const data = l.data || {};
  const metric = l.metrics || {};
  const score = typeof metric.holdout === "number"
    ? `, held-out ${metric.name} ${fixed(metric.holdout)}` +
      (typeof metric.parent_holdout === "number" ? ` (parent ${fixed(metric.parent_holdout)})` : "")
    : "";
  return `${from}: ${l.trainer} ${l.mode} on ${data.rows} rows (${data.source}, sha256 ${(data.sha256 || "").slice(0, 12)})${score}`;
}

// --- Training --------------------------------------------------------------------------------

const TRAINING_STATES = { queued: "loading", running: "loading", published: "ready", refused: "failed",
                          failed: "failed", cancelled: "unloaded" };

function jobProgress(j) {
  const p = j.progress || {};
  if (j.state !== "running") return j.reason || (j.state === "queued" ? "waiting" : "–");
  const bar = p.total ? el("progress", { max: p.total, value: p.done, "aria-label": `${p.done} of ${p.total} rounds` }) : null;
  const metric = typeof p.holdout === "number" ? ` held-out ${p.metric} ${fixed(p.holdout)}` : "";
  return [p.stage || "", " ", bar, p.total ? ` ${p.done}/${p.total}` : "", metric];
}

function buildTrainingPage(page, openId) {
  const signedIn = Boolean(token());
  if (typeof state.jobs === "string") {
    page.replaceChildren(el("h2", {}, "Training"), el("p", {}, `Training jobs are not available: ${state.jobs}.`));
    return;
  }
  const jobs = state.jobs || [];
  const modelInput = el("input", { id: "job-model", "aria-label": "Model to train", size: 16, placeholder: "model id",
                                   list: "job-models" });
  const parentInput = el("input", { id: "job-parent", "aria-label": "Parent version", size: 5, placeholder: "newest" });
  const kindInput = el("select", { id: "job-kind", "aria-label": "What the job does" },
                       el("option", { value: "train" }, "train (train.yaml)"),
                       el("option", { value: "snapshot" }, "snapshot (online model)"));
  const run = el("form", { class: "inline", onsubmit: (e) => {
      e.preventDefault();
      const model = modelInput.value.trim();
      if (!model) return show("Type the model to train.");
      const body = { model, kind: kindInput.value };
      if (parentInput.value.trim()) body.parent = Number(parentInput.value.trim());
      perform(`Queue a ${body.kind} job for ${model}?`, "POST", "/admin/jobs", body);
    } },
    el("label", { for: "job-model" }, "Run a job for"), modelInput,
    el("datalist", { id: "job-models" }, state.models.map((m) => el("option", { value: m.model_id }))),
    el("label", { for: "job-parent" }, "from version"), parentInput, kindInput,
    el("button", { type: "submit", disabled: !signedIn, "data-action": "job-run" }, "Run"));
  const rows = jobs.map((j) => {
    const actions = [];
    if (j.state === "queued" || j.state === "running") {
      actions.push(el("button", { type: "button", disabled: !signedIn, "data-action": `job-cancel-${j.id}`,
                                  onclick: () => perform(`Cancel job ${j.id} (${j.model_id})? It publishes nothing.`, "POST",
                                                         `/admin/jobs/${j.id}/cancel`) }, "Cancel"));
    }
    if (j.state === "published" && j.version) {
      actions.push(el("button", { type: "button", disabled: !signedIn, "data-action": `job-rollout-${j.id}`,
                                  onclick: () => perform(`Start a rollout of ${j.model_id} version ${j.version}?`, "POST",
                                                         `/admin/models/${encodeURIComponent(j.model_id)}/rollout`, { version: j.version }) },
                             `Roll out v${j.version}`));
    }
    return el("tr", { "data-job": j.id, class: j.id === openId ? "open" : "" },
      el("td", {}, el("a", { href: `#/training/${j.id}` }, j.id)),
      el("td", {}, el("a", { href: `#/models/${encodeURIComponent(j.model_id)}` }, j.model_id)),
      el("td", {}, j.kind, j.trigger !== "manual" ? el("div", { class: "muted" }, j.trigger) : null),
      el("td", {}, el("span", { class: `badge ${TRAINING_STATES[j.state] || ""}` }, j.state)),
      el("td", {}, jobProgress(j)),
      el("td", {}, j.created),
      el("td", {}, actions));
  });
  const parts = [
    el("h2", {}, "Training jobs"),
    run,
    table("jobs-table", ["Job", "Model", "Kind", "State", "Progress or outcome", "Queued (UTC)", "Actions"], rows,
          "No training jobs yet. A model with a train.yaml can be trained from here, with forklift jobs run, or on its schedule.")];
  const open = openId && state.job[openId];
  if (open) {
    const history = (open.history || []).map((v) => ({ holdout: v }));
    parts.push(
      el("h2", {}, `Job ${open.id}`),
      el("p", { id: "job-summary", "data-state": open.state },
         `${open.kind} of ${open.model_id}${open.parent ? " from version " + open.parent : ""}, asked by ${open.actor}: ${open.state}`,
         open.reason ? `. ${open.reason.replace(/\.?$/, ".")}` : ".",
         typeof open.holdout === "number"
           ? ` Held-out ${open.metric}: ${fixed(open.holdout)}` +
             (typeof open.parent_holdout === "number" ? ` (parent ${fixed(open.parent_holdout)}).` : ".")
           : ""),
      history.length
        ? el("div", { class: "charts single" },
             chart(`Held-out ${open.progress.metric || open.metric || "metric"} per round`, history, ["holdout"], "",
                   `${history.length} rounds`))
        : el("p", { class: "muted" }, "No per-round metric (yet)."),
      el("h2", {}, "Log"),
      el("pre", { id: "job-log" }, (state.logs[openId] || []).join("\n") || "(empty)"));
  }
  page.replaceChildren(...parts);
}

async function perform(question, method, path, body) {
  if (!window.confirm(question)) return;
  try {
    await api(method, path, body);
    show("Done: " + question.replace(/\?$/, "."), "ok");
  } catch (e) {
    show(`Not done: ${e.message}`);
  }
  await refresh();
}

async function renderAudit(page) {
  try {
    state.audit = (await api("GET", "/admin/audit")).entries;
  } catch (e) { /* keep the last entries; the banner says the server is away */ }
  page.replaceChildren(
    el("h2", {}, "Audit log"),
    el("table", { id: "audit-table" },
      el("thead", {}, el("tr", {}, ["Time (UTC)", "Who", "Model", "Action", "Before", "After", "Why"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, state.audit.length ? [...state.audit].reverse().map((a) =>
        el("tr", {}, el("td", {}, a.time), el("td", {}, a.actor), el("td", {}, a.model_id), el("td", {}, a.action),
           el("td", {}, a.before), el("td", {}, a.after), el("td", {}, a.reason || "")))
        : el("tr", {}, el("td", { colspan: 7 }, "No changes yet.")))));
}

// --- Sign in ---------------------------------------------------------------------------------

function renderLogin() {
  const signedIn = Boolean(token());
  $("token").hidden = signedIn;
  document.querySelector("label[for='token']").hidden = signedIn;
  $("sign-in").hidden = signedIn;
  $("sign-out").hidden = !signedIn;
  document.querySelector("label[for='actor']").hidden = signedIn;
  $("actor").hidden = signedIn;
  $("who").textContent = signedIn ? `Signed in as ${actor()}: changes allowed` : "";
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const value = $("token").value.trim();
  if (!value) return show("Type the admin token first.");
  sessionStorage.setItem("forklift-token", value);
  const name = $("actor").value.trim();
  // Sent in a header, which carries ASCII only; the server refuses anything else.
  if (name && !/^[\x20-\x7E]{1,64}$/.test(name)) {
    return show("Your name must be 1 to 64 plain ASCII characters (letters without accents, digits, punctuation).");
  }
  if (name) sessionStorage.setItem("forklift-actor", name);
  else sessionStorage.removeItem("forklift-actor");
  try {
    await api("POST", "/admin/login");
    $("token").value = "";
    show("Signed in.", "ok");
  } catch (err) {
    sessionStorage.removeItem("forklift-token");
    sessionStorage.removeItem("forklift-actor");
    show(`Sign-in refused: ${err.message}`);
  }
  renderLogin();
  render();
});
$("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem("forklift-token");
  renderLogin();
  render();
});

window.addEventListener("hashchange", () => { show(""); render(); $("page").focus(); });
renderLogin();
refresh();
state.timer = setInterval(refresh, POLL_MS);
