// The rayc dashboard's browser side: a login form for the cluster's admin token (kept in
// sessionStorage, sent as "Authorization: Bearer" on every request), hash-routed pages that
// poll the dashboard's JSON endpoints, and two uPlot charts of the cluster's use over time.
// Everything from the cluster is put into the page as text (textContent), never as HTML.
import uPlot from "./uPlot.esm.js";

const TOKEN_KEY = "rayc-dashboard-token";
const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

class AuthError extends Error {}

async function api(path, options = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) throw new AuthError("Log in with the cluster's admin token.");
  const headers = { Authorization: "Bearer " + token, ...(options.headers || {}) };
  const resp = await fetch(path, { ...options, headers, cache: "no-store" });
  const text = await resp.text();
  if (resp.status === 401 || resp.status === 403) throw new AuthError(text.trim());
  if (!resp.ok) throw new Error(`${resp.status}: ${text.trim()}`);
  const type = resp.headers.get("Content-Type") || "";
  return type.startsWith("application/json") ? JSON.parse(text) : text;
}

// ---- small DOM helpers ------------------------------------------------------------------

function cell(row, value, cls) {
  const td = document.createElement("td");
  if (value instanceof Node) td.append(value);
  else td.textContent = value === undefined || value === null ? "" : String(value);
  if (cls) td.className = cls;
  row.append(td);
  return td;
}

function fillTable(id, items, render, empty) {
  const body = $(id).tBodies[0];
  const rows = items.map((item) => {
    const tr = document.createElement("tr");
    render(tr, item);
    return tr;
  });
  if (!rows.length && empty) {
    const tr = document.createElement("tr");
    cell(tr, empty, "muted").colSpan = $(id).tHead.rows[0].cells.length;
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}

const short = (id) => (id ? id.slice(0, 12) : "");
const num = (v) => (Number.isInteger(v) ? String(v) : (Math.round(v * 100) / 100).toString());
const gib = (bytes) => (bytes / 2 ** 30).toFixed(1) + " GiB";
const when = (ms) => (ms ? new Date(ms).toLocaleString() : "");
const mapText = (m) => Object.entries(m || {}).map(([k, v]) => `${k}=${typeof v === "number" ? num(v) : v}`).join(", ");

function usedTotal(node, name, fmt = num) {
  const total = (node.resources_total || {})[name];
  if (total === undefined) return "";
  const avail = node.resources_available ? node.resources_available[name] ?? 0 : total;
  return `${fmt(total - avail)} / ${fmt(total)}`;
}

// ---- pages ------------------------------------------------------------------------------

const HIDDEN = /^(node:|bundle_group_|accelerator_type:|CPU$|GPU$|memory$|object_store_memory$)/;
const charts = {};

function chart(id, title, series, data) {
  const el = $(id);
  const width = Math.max(320, el.clientWidth || 500);
  if (!charts[id]) {
    charts[id] = new uPlot({ title, width, height: 220, series: [{}, ...series],
      axes: [{}, { size: 50 }] }, data, el);
  } else {
    if (Math.abs(charts[id].width - width) > 4) charts[id].setSize({ width, height: 220 });
    charts[id].setData(data);
  }
}

async function overview() {
  const [nodes, ts] = await Promise.all([api("/api/nodes"), api("/api/timeseries")]);
  $("updated").textContent = nodes.error ? `GCS: ${nodes.error}` : `updated ${when(nodes.updated_ms)}`;
  fillTable("nodes-table", nodes.nodes, (tr, n) => {
    tr.dataset.state = n.state;
    cell(tr, short(n.node_id) + (n.is_head_node ? " (head)" : "")).title = n.node_id;
    cell(tr, n.state, n.state === "ALIVE" ? "ok" : "bad");
    cell(tr, n.node_ip);
    cell(tr, [...new Set([n.accelerator_type, ...n.gpu_types].filter(Boolean))].join(", "));
    cell(tr, usedTotal(n, "CPU"));
    cell(tr, usedTotal(n, "GPU"));
    cell(tr, usedTotal(n, "memory", gib));
    cell(tr, mapText(Object.fromEntries(Object.entries(n.resources_total).filter(([k]) => !HIDDEN.test(k)))));
    cell(tr, `${n.leases_running} (+${n.leases_queued} queued)`);
    cell(tr, n.market ? (n.market.price_per_hour === null ? "leased" :
      `$${n.market.price_per_hour}/h (${n.market.provider})`) : "");
    cell(tr, mapText(n.labels));
  }, "no nodes");
  const t = ts.t;
  chart("plot-resources", "Share of the cluster in use (%)", [
    { label: "CPU %", stroke: "#1f77b4" },
    { label: "GPU %", stroke: "#d62728" },
    { label: "memory %", stroke: "#2ca02c" },
  ], [t, ...[["cpu_used", "cpu_total"], ["gpu_used", "gpu_total"], ["mem_used", "mem_total"]].map(
    ([u, tot]) => ts[u].map((v, i) => (ts[tot][i] > 0 ? (100 * v) / ts[tot][i] : null)))]);
  chart("plot-tasks", "Running, queued, and leases granted per second", [
    { label: "running", stroke: "#9467bd" },
    { label: "queued", stroke: "#ff7f0e" },
    { label: "grants/s", stroke: "#17becf" },
    { label: "nodes", stroke: "#7f7f7f" },
  ], [t, ts.running, ts.queued, ts.granted_per_s, ts.nodes_alive]);
}

let jobView = null; // {id, offset, ended}

async function jobs() {
  const list = await api("/api/jobs/");
  list.sort((a, b) => (b.start_time || 0) - (a.start_time || 0));
  fillTable("jobs-table", list, (tr, j) => {
    tr.dataset.submissionId = j.submission_id;
    cell(tr, j.submission_id);
    cell(tr, j.job_id || "");
    cell(tr, j.status, j.status === "SUCCEEDED" ? "ok" : j.status === "FAILED" ? "bad" : "");
    cell(tr, j.entrypoint);
    cell(tr, when(j.start_time));
    cell(tr, j.message || "");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = "Logs";
    b.addEventListener("click", () => openJob(j.submission_id));
    cell(tr, b);
  }, "no jobs yet");
  if (jobView) await followJob();
}

function openJob(id) {
  jobView = { id, offset: 0, ended: false };
  $("job-view").hidden = false;
  $("job-id").textContent = id;
  $("job-status").textContent = "";
  $("job-logs").textContent = "";
  followJob().catch(showError);
}

async function followJob() {
  const v = jobView;
  if (!v || v.ended || v.busy) return;
  v.busy = true;
  try {
    const r = await api(`/api/jobs/${encodeURIComponent(v.id)}/logs/tail?offset=${v.offset}`);
    if (jobView !== v) return;
    v.offset = r.offset;
    if (r.logs) $("job-logs").append(document.createTextNode(r.logs));
    $("job-status").textContent = r.status;
    $("job-stop").disabled = r.ended;
    v.ended = r.ended;
  } finally {
    v.busy = false;
  }
}

async function submitJob(ev) {
  ev.preventDefault();
  $("job-form-msg").textContent = "";
  const body = { entrypoint: $("job-entrypoint").value };
  const env = $("job-runtime-env").value.trim();
  if (env) {
    try {
      body.runtime_env = JSON.parse(env);
    } catch (e) {
      $("job-form-msg").textContent = "runtime env is not JSON: " + e.message;
      return;
    }
  }
  try {
    const r = await api("/api/jobs/", { method: "POST", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json" } });
    openJob(r.submission_id);
    await jobs();
  } catch (e) {
    if (e instanceof AuthError) throw e;
    $("job-form-msg").textContent = e.message;
  }
}

async function stopJob() {
  if (!jobView) return;
  await api(`/api/jobs/${encodeURIComponent(jobView.id)}/stop`, { method: "POST" });
  await jobs();
}

async function actors() {
  const r = await api("/api/actors");
  fillTable("actors-table", r.actors, (tr, a) => {
    cell(tr, short(a.actor_id)).title = a.actor_id;
    cell(tr, a.class_name);
    cell(tr, a.name);
    cell(tr, a.state, a.state === "ALIVE" ? "ok" : a.state === "DEAD" ? "bad" : "");
    cell(tr, a.job_id);
    cell(tr, short(a.node_id)).title = a.node_id;
    cell(tr, a.pid || "");
    cell(tr, a.num_restarts);
    cell(tr, mapText(a.required_resources));
    cell(tr, a.death_cause);
  }, "no actors");
}

function stateCounts(tr, g) {
  tr.dataset.total = g.total;
  tr.dataset.counts = JSON.stringify(g.counts);
  cell(tr, g.total);
  cell(tr, Object.entries(g.counts).map(([state, n]) => `${state}: ${n}`).join(", "),
    g.counts.FAILED ? "bad" : "");
}

async function tasks() {
  const r = await api("/api/tasks/summary");
  const ev = r.events;
  $("task-source").textContent = `From the GCS's task events: the newest ${ev.stored > ev.truncated ?
    ev.stored - ev.truncated : ev.stored} of ${ev.stored} task attempts stored` +
    (ev.dropped ? `, ${ev.dropped} events dropped by workers.` : ".");
  fillTable("task-names-table", ev.by_name, (tr, g) => {
    tr.dataset.name = g.name;
    cell(tr, g.name);
    stateCounts(tr, g);
  }, "no task events");
  fillTable("task-jobs-table", ev.by_job, (tr, g) => {
    tr.dataset.jobId = g.job_id;
    cell(tr, g.job_id);
    stateCounts(tr, g);
  }, "no task events");
  fillTable("task-recent-table", ev.recent, (tr, t) => {
    tr.dataset.taskId = t.task_id;
    tr.dataset.state = t.state;
    cell(tr, short(t.task_id));
    cell(tr, t.name || t.func_or_class_name);
    cell(tr, t.state, t.state === "FAILED" ? "bad" : t.state === "FINISHED" ? "ok" : "");
    cell(tr, t.job_id);
    cell(tr, short(t.node_id));
    cell(tr, t.worker_pid !== null ? `${short(t.worker_id)} (pid ${t.worker_pid})` : short(t.worker_id));
    cell(tr, t.error_type || "", t.error_type ? "bad" : "");
  }, "no task events");
  fillTable("tasks-table", r.jobs, (tr, j) => {
    tr.dataset.jobId = j.job_id;
    tr.dataset.running = j.running;
    cell(tr, j.job_id);
    cell(tr, j.entrypoint);
    cell(tr, j.is_dead ? "finished" : "running");
    cell(tr, j.running);
    cell(tr, j.queued);
    cell(tr, num(j.cpus));
    cell(tr, j.nodes);
  }, "no jobs");
  fillTable("demands-table", r.demands, (tr, d) => {
    cell(tr, mapText(d.shape));
    cell(tr, d.ready);
    cell(tr, d.infeasible, d.infeasible ? "bad" : "");
    cell(tr, d.backlog);
  }, "nothing waits");
}

async function pgs() {
  const r = await api("/api/placement_groups");
  fillTable("pgs-table", r.placement_groups, (tr, g) => {
    cell(tr, short(g.placement_group_id)).title = g.placement_group_id;
    cell(tr, g.name);
    cell(tr, g.state, g.state === "CREATED" ? "ok" : g.state === "PENDING" ? "warn" : "");
    cell(tr, g.strategy);
    cell(tr, g.bundles.map((b) => `{${mapText(b.resources)}}${b.node_id ? "@" + short(b.node_id) : ""}`).join(" "));
    cell(tr, `${g.scheduling_state} (attempt ${g.scheduling_attempt})`);
    cell(tr, g.explanation);
  }, "no placement groups");
}

async function market() {
  const r = await api("/api/market");
  const s = r.status;
  if (!s) {
    $("market-summary").textContent = "No market has run on this cluster (rayc market start --config FILE).";
    fillTable("leases-table", [], () => {}, "no leases");
    fillTable("providers-table", [], () => {}, "no providers");
    return;
  }
  const cap = (v, unit) => (v > 0 ? `$${num(v)}${unit}` : "no cap");
  $("market-summary").textContent = `Spend $${(s.spend_per_hour ?? 0).toFixed(4)}/h of ` +
    `${cap(s.budget_per_hour, "/h")}; $${(s.spend_total ?? 0).toFixed(4)} in total of ${cap(s.budget_total, "")}.` +
    (s.gcs_reachable === false ? " The market could not reach the GCS at its last round." : "");
  fillTable("leases-table", s.leases || [], (tr, l) => {
    tr.dataset.leaseId = l.lease_id;
    cell(tr, l.lease_id);
    cell(tr, l.provider);
    cell(tr, l.state);
    cell(tr, l.price_per_hour !== undefined ? `$${l.price_per_hour}` : "");
    cell(tr, l.spend !== undefined ? `$${Number(l.spend).toFixed(4)}` : "");
    const rest = Object.fromEntries(Object.entries(l).filter(([k, v]) =>
      !["lease_id", "provider", "state", "price_per_hour", "spend"].includes(k) && typeof v !== "object"));
    cell(tr, mapText(rest));
  }, "no leases");
  fillTable("providers-table", s.providers || [], (tr, p) => {
    cell(tr, p.name);
    cell(tr, p.type);
    cell(tr, p.reachable ? "yes" : "no", p.reachable ? "ok" : "bad");
    cell(tr, p.offers);
    cell(tr, p.error || "");
  }, "no providers");
}

let logNode = ""; // "": the head
let logFile = null;
let logNodeIds = "";

const logQuery = () => (logNode ? `node=${encodeURIComponent(logNode)}` : "");

// The node picker: the alive nodes, the head first; rebuilt only when they change.
function fillLogNodes(nodes) {
  const sorted = [...(nodes || [])].sort(
    (a, b) => b.is_head_node - a.is_head_node || a.node_id.localeCompare(b.node_id));
  const ids = sorted.map((n) => n.node_id).join(",");
  if (ids === logNodeIds) return;
  logNodeIds = ids;
  const select = $("log-node");
  select.replaceChildren(...sorted.map((n) => {
    const o = document.createElement("option");
    o.value = n.is_head_node ? "" : n.node_id;
    o.textContent = `${n.name || short(n.node_id)} ${n.node_ip}${n.is_head_node ? " (head)" : ""} ${short(n.node_id)}`;
    return o;
  }));
  select.value = logNode;
}

// A node's answer that is not about the token (unreachable, dead, no such file) is shown on
// the page; the list keeps polling.
async function logApi(path) {
  try {
    const r = await api(path);
    $("log-error").textContent = "";
    return r;
  } catch (e) {
    if (e instanceof AuthError) throw e;
    $("log-error").textContent = e.message;
    return null;
  }
}

async function logs() {
  const q = logQuery();
  const r = await logApi("/api/logs" + (q ? "?" + q : ""));
  if (!r) {
    $("log-files").replaceChildren();
    return;
  }
  fillLogNodes(r.nodes);
  const items = r.files.sort((a, b) => a.name.localeCompare(b.name)).map((f) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = "#logs";
    a.textContent = f.size === undefined ? f.name : `${f.name} (${f.size} B)`;
    a.dataset.name = f.name;
    a.addEventListener("click", (ev) => {
      ev.preventDefault();
      logFile = f.name;
      showLog().catch(showError);
    });
    li.append(a);
    return li;
  });
  $("log-files").replaceChildren(...items);
  if (logFile) await showLog();
}

async function showLog() {
  const q = logQuery();
  const text = await logApi(`/api/logs?${q ? q + "&" : ""}file=${encodeURIComponent(logFile)}`);
  if (text === null) return;
  $("log-name").textContent = logFile;
  const pre = $("log-text");
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.textContent = text;
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}

$("log-node").addEventListener("change", () => {
  logNode = $("log-node").value;
  logFile = null;
  $("log-name").textContent = "";
  $("log-text").textContent = "";
  $("log-files").replaceChildren();
  refresh();
});

const PAGES = { overview, jobs, actors, tasks, pgs, market, logs };

// ---- routing, login and the poll --------------------------------------------------------

function showLogin(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  document.querySelectorAll(".page").forEach((p) => (p.hidden = p.id !== "login"));
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("login-reason").textContent = reason || "";
  $("token").focus();
}

function showError(e) {
  if (e instanceof AuthError) showLogin(e.message);
  else $("updated").textContent = e.message;
}

function current() {
  const name = location.hash.slice(1);
  return PAGES[name] ? name : "overview";
}

let timer = null;

async function refresh() {
  clearTimeout(timer);
  if (!sessionStorage.getItem(TOKEN_KEY)) return showLogin("");
  const name = current();
  document.querySelectorAll(".page").forEach((p) => (p.hidden = p.id !== "page-" + name));
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.hash === "#" + name));
  $("nav").hidden = false;
  $("logout").hidden = false;
  try {
    await PAGES[name]();
  } catch (e) {
    showError(e);
    if (e instanceof AuthError) return;
  }
  timer = setTimeout(refresh, POLL_MS);
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  $("login-reason").textContent = "";
  refresh();
});
$("logout").addEventListener("click", () => showLogin("Logged out."));
$("job-form").addEventListener("submit", (ev) => submitJob(ev).catch(showError));
$("job-stop").addEventListener("click", () => stopJob().catch(showError));
window.addEventListener("hashchange", refresh);
refresh();
