// ttmemd's dashboard: the views from /api (the same JSON as `ttmem ... --json`), refreshed when
// /api/events says something changed and once a second for the history charts. The timeline from
// ttmemd's history is timeline.js's.
"use strict";

const TYPES = ["DRAM", "L1", "L1_SMALL", "TRACE", "CB"];
const HISTORY_SAMPLES = 600; // ten minutes at one sample a second

const state = {
  stats: null,
  info: null,
  leaks: null,
  history: new Map(), // device id -> [[times], [DRAM %], [L1 %]]
  cards: new Map(), // device id -> { card, rows, chart }
  sort: { key: "DRAM", descending: true },
  groupBy: "op",
  groupDevice: "",
  groupPid: "",
  groupText: "",
  oom: null,
  groups: null,
  mapDevice: null, // the first announced device until one is picked
  mapType: "L1",
  map: null,
  inFlight: false,
  again: false,
};

function humanBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${n.toFixed(1)} ${units[u]}`;
}

function clock(ns) {
  return new Date(ns / 1e6).toLocaleTimeString();
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

function groupsPath() {
  const q = new URLSearchParams({ by: state.groupBy, limit: "50" });
  if (state.groupDevice !== "") q.set("device", state.groupDevice);
  if (state.groupPid !== "") q.set("pid", state.groupPid);
  // The text is looked for in the key being grouped by: the op path, else the site.
  if (state.groupText !== "") q.set(state.groupBy === "site" ? "site" : "scope", state.groupText);
  return `/api/buffers?${q}`;
}

/// The device and type whose map is shown: only announced ones (ttmemd has no map of the others).
function mapTarget(stats) {
  const announced = stats.devices.filter((d) => d.arch);
  if (!announced.some((d) => d.id === state.mapDevice)) state.mapDevice = announced.length ? announced[0].id : null;
  const d = announced.find((x) => x.id === state.mapDevice);
  if (!d) return null;
  const types = ["L1", "DRAM", "L1_SMALL", "TRACE"].filter((t) => d.memory[t].total > 0);
  if (!types.includes(state.mapType)) state.mapType = types[0];
  return { device: d.id, type: state.mapType, types, devices: announced.map((x) => x.id) };
}

async function refresh() {
  if (state.inFlight) {
    state.again = true; // one more right after: never miss the last change
    return;
  }
  state.inFlight = true;
  try {
    const [stats, info, leaks, groups, oom] = await Promise.all([
      getJSON("/api/stats"),
      getJSON("/api/info"),
      getJSON("/api/leaks"),
      getJSON(groupsPath()),
      getJSON("/api/oom"),
    ]);
    const target = mapTarget(stats);
    const map = target ? await getJSON(`/api/map?device=${target.device}&buffer_type=${target.type}`) : null;
    Object.assign(state, { stats, info, leaks, groups, oom, map, mapChoices: target });
    render();
    timelineFollow(stats);
  } catch (e) {
    setLive(false, String(e));
  } finally {
    state.inFlight = false;
    if (state.again) {
      state.again = false;
      refresh();
    }
  }
}

function sampleHistory() {
  if (!state.stats) return;
  const now = Date.now() / 1000;
  for (const d of state.stats.devices) {
    let h = state.history.get(d.id);
    // The chart spans the last ten minutes from its first sample on: a point with no values at the
    // window's start gives the time axis its width (with one or two samples it would span years).
    if (!h) state.history.set(d.id, (h = [[now - HISTORY_SAMPLES], [null], [null]]));
    const pct = (t) => (d.memory[t].total ? (100 * d.memory[t].used) / d.memory[t].total : 0);
    h[0].push(now);
    h[1].push(pct("DRAM"));
    h[2].push(pct("L1") + pct("CB"));
    if (h[0].length > HISTORY_SAMPLES) h.forEach((s) => s.shift());
    const c = state.cards.get(d.id);
    if (c && c.chart) c.chart.setData(h);
  }
}

function setLive(live, why = "") {
  const s = document.getElementById("status");
  s.className = `status ${live ? "live" : "lost"}`;
  s.title = live ? "live updates" : `not connected: ${why}`;
}

function render() {
  const { stats, info } = state;
  document.getElementById("server").textContent =
    `ttmemd ${info.version} · pid ${info.pid} · up ${Math.round(info.uptime_s)} s · ` +
    `${info.processes} process(es) · ${stats.active_allocations} allocation(s)`;
  renderDevices(stats.devices);
  renderProcesses(stats.processes);
  renderRecords(state.leaks);
  renderGroups(state.groups, stats);
  renderOoms(state.oom);
  renderMap(state.map, state.mapChoices);
}

/// Options of a <select>, kept when they are the same (so an open menu is not reset by a refresh).
function setOptions(select, values, labels, current) {
  const wanted = values.map(String);
  const have = [...select.options].map((o) => o.value);
  if (wanted.length !== have.length || wanted.some((v, i) => v !== have[i]))
    select.replaceChildren(...values.map((v, i) => el("option", { value: String(v) }, labels[i])));
  select.value = String(current);
}

function renderGroups(answer, stats) {
  const devices = stats.devices;
  setOptions(
    document.getElementById("group-device"),
    ["", ...devices.map((d) => d.id)],
    ["all", ...devices.map((d) => String(d.id))],
    state.groupDevice,
  );
  const processes = new Map();
  for (const p of stats.processes) processes.set(p.pid, p.command || p.name);
  if (state.groupPid !== "" && !processes.has(Number(state.groupPid))) processes.set(Number(state.groupPid), "gone");
  const pids = [...processes.keys()].sort((a, b) => a - b);
  setOptions(
    document.getElementById("group-pid"),
    ["", ...pids],
    ["all", ...pids.map((p) => `${p} ${processes.get(p)}`.slice(0, 40))],
    state.groupPid,
  );
  const by = state.groupBy;
  document.querySelector("#groups th.key").textContent = { op: "OP", site: "SITE", pid: "PID", device: "DEV" }[by];
  const rows = answer.groups || [];
  document.querySelector("#groups tbody").replaceChildren(
    ...rows.map((g) =>
      el(
        "tr",
        { "data-key": g.key, "data-slot": g.slot },
        el("td", {}, by === "pid" ? `${g.key} (${g.name})` : g.key || "(none)"),
        el("td", {}, g.slot),
        el("td", { class: "num" }, humanBytes(g.bytes)),
        el("td", { class: "num" }, String(g.buffers)),
        el("td", { class: "num" }, humanBytes(g.largest)),
        el("td", { class: "num" }, String(g.devices)),
        el("td", { class: "num" }, String(g.processes)),
      ),
    ),
  );
  const shown = rows.length;
  document.getElementById("groups-note").textContent =
    shown === 0
      ? "No live buffers."
      : `${answer.total} buffer(s) in ${answer.total_groups} group(s)` +
        (shown < answer.total_groups ? `, the ${shown} largest shown` : "");
}

/// A colour per owner and op (or site): the same key keeps its colour from one refresh to the next.
function colourOf(key) {
  let h = 0;
  for (const ch of key) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${h % 360}, 55%, 52%)`;
}

const MAX_MAP_BLOCKS = 4000; // a drawing of more is not readable anyway; the figures still count all

function renderMap(map, choices) {
  const box = document.getElementById("map");
  const cbs = document.getElementById("map-cbs");
  const legend = document.getElementById("map-legend");
  if (!map || !choices) {
    box.replaceChildren(el("p", { class: "empty" }, "No device has announced its banks yet."));
    cbs.hidden = true;
    legend.replaceChildren();
    document.getElementById("map-figures").textContent = "";
    return;
  }
  setOptions(document.getElementById("map-device"), choices.devices, choices.devices.map(String), choices.device);
  setOptions(document.getElementById("map-type"), choices.types, choices.types, choices.type);
  const s = map.space;
  document.getElementById("map-figures").textContent =
    `${humanBytes(s.free_per_bank)} free of ${humanBytes(s.bank_size)} per bank, in ${s.free_blocks} block(s); ` +
    `largest ${humanBytes(s.largest_free_block)}; fragmentation ${(s.fragmentation * 100).toFixed(1)}%`;
  const share = (size) => `${(100 * size) / s.bank_size}%`;
  const owners = new Map(); // key -> bytes, for the legend
  const keyOf = (b) => `pid ${b.pid} · ${b.scope || b.site || "?"}`;
  const block = (b) => {
    const d = el("div", {
      class: b.use,
      "data-use": b.use,
      "data-address": String(b.address),
      "data-size": String(b.size),
      title:
        b.use === "free"
          ? `free: ${humanBytes(b.size)} at 0x${b.address.toString(16)}`
          : `${b.use === "overlap" ? `${b.buffers} buffers at once` : keyOf(b)}: ${humanBytes(b.size)} at 0x${b.address.toString(16)}`,
    });
    if (b.use === "buffer" || b.use === "cb") {
      const key = keyOf(b);
      d.style.background = colourOf(key);
      d.dataset.pid = String(b.pid);
      owners.set(key, (owners.get(key) || 0) + b.size);
    }
    return d;
  };
  const drawn = map.blocks.slice(0, MAX_MAP_BLOCKS).map((b) => {
    const d = block(b);
    d.style.width = share(b.size);
    if (b.use !== "free") d.style.minWidth = "1px";
    return d;
  });
  box.replaceChildren(...drawn);
  // Circular buffers sit in L1 below the buffers, at their own addresses (programs' CBs may share them).
  cbs.hidden = map.circular_buffers.length === 0;
  cbs.replaceChildren(
    ...map.circular_buffers.slice(0, MAX_MAP_BLOCKS).map((b) => {
      const d = block(b);
      d.style.position = "absolute";
      d.style.left = share(b.address - map.base);
      d.style.width = share(b.size);
      d.style.minWidth = "1px";
      return d;
    }),
  );
  const top = [...owners.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10);
  legend.replaceChildren(
    ...top.map(([key, bytes]) => el("li", {}, el("i"), `${key} — ${humanBytes(bytes)}`)),
    ...(map.blocks.length > MAX_MAP_BLOCKS ? [el("li", {}, `(the first ${MAX_MAP_BLOCKS} of ${map.blocks.length} blocks are drawn)`)] : []),
  );
  [...legend.querySelectorAll("i")].forEach((i, n) => (i.style.background = colourOf(top[n][0])));
}

function usageRow(type) {
  const fill = el("div");
  const figures = el("span", { class: "figures" });
  return { fill, figures, nodes: [el("span", { class: "type" }, type), el("div", { class: "bar" }, fill), figures] };
}

function deviceCard(id) {
  const title = el("h3");
  const usage = el("div", { class: "usage" });
  const rows = {};
  for (const t of TYPES) {
    rows[t] = usageRow(t);
    usage.append(...rows[t].nodes);
  }
  const chartBox = el("div", { class: "chart" });
  const card = el("section", { class: "device", "data-device": String(id) }, title, usage, chartBox);
  return { card, title, rows, chartBox, chart: null };
}

function makeChart(c, id) {
  const width = Math.max(200, c.chartBox.clientWidth);
  c.chart = new uPlot(
    {
      width,
      height: 120,
      legend: { show: true },
      scales: { y: { range: [0, 100] } },
      axes: [{}, { values: (u, v) => v.map((x) => `${x}%`) }],
      series: [{}, { label: "DRAM", stroke: "#2e6fd0" }, { label: "L1 + CB", stroke: "#d0342c" }],
    },
    state.history.get(id) || [[], [], []],
    c.chartBox,
  );
}

function renderDevices(devices) {
  const box = document.getElementById("devices");
  if (devices.length === 0) {
    box.replaceChildren(el("p", { class: "empty" }, "No device has been reported yet."));
    state.cards.clear();
    return;
  }
  const seen = new Set();
  for (const d of devices) {
    seen.add(d.id);
    let c = state.cards.get(d.id);
    if (!c) {
      c = deviceCard(d.id);
      state.cards.set(d.id, c);
    }
    c.title.replaceChildren(
      `Device ${d.id} `,
      el("span", {}, `${d.arch || "not announced"} · ${d.processes} process(es) · ${d.buffers} buffer(s)`),
    );
    for (const t of TYPES) {
      const m = d.memory[t];
      const share = m.total ? m.used / m.total : 0;
      const row = c.rows[t];
      row.fill.style.width = `${Math.min(100, share * 100)}%`;
      row.fill.className = share > 0.9 ? "bad" : share > 0.7 ? "warn" : "";
      // The largest free block is per bank: the most one more allocation can take in each bank.
      row.figures.replaceChildren(
        m.total ? `${humanBytes(m.used)} / ${humanBytes(m.total)} (${(share * 100).toFixed(0)}%)` : humanBytes(m.used),
        ...(m.largest_free_block === undefined
          ? []
          : [el("span", { class: "largest" }, `largest free ${humanBytes(m.largest_free_block)}/bank`)]),
      );
      row.figures.dataset.used = String(m.used);
      if (m.largest_free_block !== undefined) row.figures.dataset.largest = String(m.largest_free_block);
    }
  }
  for (const id of [...state.cards.keys()]) if (!seen.has(id)) state.cards.delete(id);
  const cards = devices.map((d) => state.cards.get(d.id).card);
  if (box.children.length !== cards.length || cards.some((c, i) => box.children[i] !== c)) box.replaceChildren(...cards);
  for (const d of devices) {
    const c = state.cards.get(d.id);
    if (!c.chart && typeof uPlot !== "undefined") makeChart(c, d.id);
  }
}

function renderProcesses(rows) {
  const { key, descending } = state.sort;
  const sorted = [...rows].sort((a, b) => {
    const x = a[key] ?? "", y = b[key] ?? "";
    const order = typeof x === "string" ? x.localeCompare(y) : x - y;
    return descending ? -order : order;
  });
  const body = document.querySelector("#processes tbody");
  body.replaceChildren(
    ...sorted.map((p) =>
      el(
        "tr",
        { "data-pid": String(p.pid), "data-device": String(p.device) },
        el("td", { class: "num" }, String(p.device)),
        el("td", { class: "num" }, String(p.pid)),
        el("td", {}, p.name),
        ...TYPES.map((t) => el("td", { class: "num" }, humanBytes(p[t]))),
        el("td", { class: "num" }, String(p.buffers)),
        el("td", { class: "command" }, p.command || ""),
      ),
    ),
  );
  document.getElementById("no-processes").hidden = rows.length > 0;
  for (const th of document.querySelectorAll("#processes th")) {
    th.classList.toggle("sorted", th.dataset.key === key);
    th.classList.toggle("asc", th.dataset.key === key && !descending);
  }
}

/// Each record as one line (its verdict), opening to what the device held then.
function renderOoms(answer) {
  const box = document.getElementById("ooms");
  const open = new Set([...box.querySelectorAll("details[open]")].map((d) => d.dataset.id));
  const items = (answer.records || []).slice(0, 20).map((r) => {
    const holders = el(
      "table",
      {},
      el("thead", {}, el("tr", {}, ...["PID", "COMMAND", `${r.type}/BANK`, "RUNTIME/BANK", "BUFFERS"].map((h) => el("th", {}, h)))),
      el(
        "tbody",
        {},
        ...r.holders.map((h) =>
          el(
            "tr",
            {},
            el("td", { class: "num" }, String(h.pid)),
            el("td", {}, h.command || h.name),
            el("td", { class: "num" }, humanBytes(h.per_bank)),
            el("td", { class: "num" }, humanBytes(h.internal_per_bank)),
            el("td", { class: "num" }, String(h.buffers)),
          ),
        ),
      ),
    );
    const details = el(
      "details",
      { "data-id": String(r.id) },
      el(
        "summary",
        {},
        el("time", {}, clock(r.time_ns)),
        `#${r.id} pid ${r.pid} (${r.name}) was refused ${humanBytes(r.size)} of ${r.type} on device ${r.device}: ` +
          `${r.verdict}`,
      ),
      el("p", {}, r.summary),
      ...(r.site || r.scope ? [el("p", {}, `site ${r.site || "-"}${r.scope ? `, op ${r.scope}` : ""}`)] : []),
      holders,
    );
    details.open = open.has(String(r.id));
    return el("li", { class: r.verdict, "data-id": String(r.id), "data-verdict": r.verdict }, details);
  });
  box.replaceChildren(...(items.length ? items : [el("p", { class: "empty" }, "none")]));
}

function renderRecords(leaks) {
  const leakItems = leaks.leaks.slice(0, 20).map((l) =>
    el(
      "li",
      { "data-kind": "leak" },
      el("time", {}, clock(l.time_ns)),
      `pid ${l.pid} (${l.name}) held ${humanBytes(l.size)} of ${l.type} on device ${l.device} at close` +
        ` — site ${l.site || "-"}, ${l.cause}`,
    ),
  );
  const orphanItems = leaks.orphans.slice(0, 20).flatMap((o) =>
    o.messages.map((m) => el("li", { "data-kind": "orphan", "data-pid": String(o.pid) }, el("time", {}, clock(o.time_ns)), m)),
  );
  document.getElementById("leaks").replaceChildren(...(leakItems.length ? leakItems : [el("p", { class: "empty" }, "none")]));
  document.getElementById("orphans").replaceChildren(...(orphanItems.length ? orphanItems : [el("p", { class: "empty" }, "none")]));
}

function connectStream() {
  const events = new EventSource("/api/events");
  let pending = null;
  events.onopen = () => setLive(true);
  events.onmessage = () => {
    if (!pending) pending = setTimeout(() => ((pending = null), refresh()), 50); // a burst is one refresh
  };
  events.onerror = () => setLive(false, "the event stream broke; retrying");
}

for (const th of document.querySelectorAll("#processes th")) {
  th.addEventListener("click", () => {
    const key = th.dataset.key;
    const textual = key === "name" || key === "command";
    state.sort = state.sort.key === key ? { key, descending: !state.sort.descending } : { key, descending: !textual };
    if (state.stats) renderProcesses(state.stats.processes);
  });
}

// Each control sets one field of the state and refreshes: [element, event, field, value from the element].
for (const [id, event, field, read] of [
  ["group-by", "change", "groupBy", (v) => v],
  ["group-device", "change", "groupDevice", (v) => v],
  ["group-pid", "change", "groupPid", (v) => v],
  ["group-text", "input", "groupText", (v) => v],
  ["map-device", "change", "mapDevice", Number],
  ["map-type", "change", "mapType", (v) => v],
]) {
  document.getElementById(id).addEventListener(event, (e) => {
    state[field] = read(e.target.value);
    refresh();
  });
}

// For the browser test and for people poking at the page from the console.
window.ttmemDashboard = state;
window.ttmemTimeline = timeline;

timelineSetup();
connectStream();
refresh().then(sampleHistory);
setInterval(() => refresh().then(sampleHistory), 1000);
