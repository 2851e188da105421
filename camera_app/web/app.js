// The camera page: polls stats.json and fills the page with textContent only (never markup), so a
// class name or a source that looks like HTML shows as text.
"use strict";

const POLL_MS = 1000;
const CLASSES_LISTED = 10;  // up to this many classes are all listed; beyond, the first 3 and a count
const STAGES = ["preprocess", "inference", "postprocess", "overlay", "output"];
const $ = (id) => document.getElementById(id);

function isNumber(v) { return typeof v === "number" && Number.isFinite(v); }
function fixed(v, digits = 1) { return isNumber(v) ? v.toFixed(digits) : "–"; }
function percent(v) { return isNumber(v) ? (100 * v).toFixed(1) + " %" : "–"; }
function quantile(v, key) { return v && typeof v === "object" ? v[key] : (key === "p50" ? v : null); }

function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

function duration(seconds) {
  if (!isNumber(seconds)) return "–";
  const s = Math.floor(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return (h ? h + " h " : "") + (h || m ? m + " min " : "") + (s % 60) + " s";
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function fillRows(tbody, rows) {
  tbody.replaceChildren();
  for (const [name, value] of rows) {
    const row = tbody.insertRow();
    cell(row, name);
    cell(row, value === null || value === undefined || value === "" ? "–" : String(value)).title = String(value);
  }
}

function showTop(s) {
  const top = Array.isArray(s.top_k) ? s.top_k : [];
  $("top-label").textContent = top.length ? String(top[0].label) : "–";
  $("top-prob").textContent = top.length ? percent(top[0].prob) : "";
  $("uncertain").hidden = !s.uncertain;
  const tbody = $("top-k").tBodies[0];
  tbody.replaceChildren();
  for (const t of top) {
    const row = tbody.insertRow();
    cell(row, String(t.label));
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = (isNumber(t.prob) ? Math.max(0, Math.min(1, t.prob)) * 100 : 0) + "%";
    row.insertCell().append(bar);
    cell(row, percent(t.prob), "num");
  }
}

function showNumbers(s, info) {
  fillRows($("numbers"), [
    ["pipeline", fixed(s.pipeline_fps) + " fps"],
    ["model", fixed(s.model_fps) + " fps"],
    ["frame age p50 / p95", fixed(quantile(s.age_ms, "p50"), 0) + " / " + fixed(quantile(s.age_ms, "p95"), 0) + " ms"],
    ["classified", s.classified],
    ["dropped", s.dropped],
    ["invalid output", s.invalid],
    ["reconnects", s.reconnects],
    ["uptime", duration(isNumber(s.uptime_s) ? s.uptime_s : Date.now() / 1000 - info.started)],
    ["source", info.source],
  ]);
  const stages = $("stages");
  stages.replaceChildren();
  const latency = s.latency_ms || {};
  for (const name of STAGES) {
    const row = stages.insertRow();
    cell(row, name);
    cell(row, fixed(quantile(latency[name], "p50")));
    cell(row, fixed(quantile(latency[name], "p95")));
  }
}

function showWatch(watch) {
  $("watch-section").hidden = !watch;
  $("alert").hidden = !(watch && watch.alert);
  if (!watch) return;
  fillRows($("watch"), [
    ["frames", watch.frames + " of " + watch.window],
    ["mean confidence", percent(watch.mean_confidence)],
    ["uncertain share", percent(watch.uncertain_share)],
    ["drift (" + (watch.drift_metric || "") + ")", fixed(watch.drift, 3)],
    ["alert", watch.alert ? "yes" : "no"],
  ]);
}

function showModel(info) {
  const classes = Array.isArray(info.classes) ? info.classes : [];
  fillRows($("model"), [
    ["name", info.model],
    ["classes", classes.length <= CLASSES_LISTED ? classes.length + ": " + classes.join(", ")
      : classes.length + ": " + classes.slice(0, 3).join("; ") + "; … (+" + (classes.length - 3) + ")"],
    ["recorded accuracy", percent(info.accuracy)],
    ["backend", [info.backend, info.precision].filter(Boolean).join(" · ")],
    ["provider", info.provider + (isNumber(info.threads) ? " · " + plural(info.threads, "thread") : "")],
  ]);
}

function drawChart(history) {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const style = getComputedStyle(document.documentElement);
  const color = (name) => style.getPropertyValue(name).trim();
  const t = (history && history.t) || [];
  const left = 44, right = 44, top = 8, bottom = 18;
  const w = width - left - right, h = height - top - bottom;
  const latency = (history && history.latency_ms) || [];
  const confidence = (history && history.confidence) || [];
  // The scale follows the 95th percentile, so one slow frame does not flatten the rest (it clips at the top).
  const sorted = latency.filter(isNumber).sort((a, b) => a - b);
  const maxLatency = Math.max(1, sorted.length ? sorted[Math.floor(0.95 * (sorted.length - 1))] * 1.5 : 1);
  g.font = "11px system-ui, sans-serif";
  g.lineWidth = 1;
  g.strokeStyle = color("--line");
  g.fillStyle = color("--dim");
  for (let i = 0; i <= 4; i++) {
    const y = top + (h * i) / 4;
    g.beginPath(); g.moveTo(left, y); g.lineTo(left + w, y); g.stroke();
    g.textAlign = "right"; g.fillText(fixed(maxLatency * (1 - i / 4), 0), left - 4, y + 4);
    g.textAlign = "left"; g.fillText(((1 - i / 4) * 100).toFixed(0) + "%", left + w + 4, y + 4);
  }
  g.textAlign = "center";
  for (const ago of [60, 45, 30, 15, 0]) {
    g.fillText(ago ? "-" + ago + " s" : "now", left + w * (1 - ago / 60), height - 4);
  }
  const end = t.length ? t[t.length - 1] : 0;
  const line = (values, max, stroke) => {
    g.strokeStyle = stroke; g.lineWidth = 2; g.beginPath();
    let drawing = false;
    values.forEach((v, i) => {
      const age = end - t[i];
      if (!isNumber(v) || !isNumber(age) || age > 60) { drawing = false; return; }
      const x = left + w * (1 - age / 60), y = top + h * (1 - Math.min(v / max, 1));
      if (drawing) g.lineTo(x, y); else g.moveTo(x, y);
      drawing = true;
    });
    g.stroke();
  };
  line(latency, maxLatency, color("--latency"));
  line(confidence, 1, color("--accent"));
}

async function tick() {
  const status = $("status");
  try {
    const response = await fetch("stats.json", { cache: "no-store" });
    if (!response.ok) throw new Error(response.status + " " + response.statusText);
    const s = await response.json();
    const info = s.info || {};
    const title = "edgevision camera: " + (s.title || info.model || "");
    document.title = title;
    $("title").textContent = title;
    showTop(s);
    showNumbers(s, info);
    showWatch(s.watch);
    showModel(info);
    drawChart(s.history);
    status.textContent = "live, frame " + (isNumber(s.frame) ? s.frame : "–");
    status.className = "status live";
  } catch (error) {
    status.textContent = "no answer from the app (" + error.message + ")";
    status.className = "status lost";
  }
}

if (new URLSearchParams(location.search).has("token")) {
  history.replaceState(null, "", location.pathname);  // the cookie carries it from here on
}
tick();
setInterval(tick, POLL_MS);
