// The dashboard's timeline: ttmemd's history (/api/timeline, /api/history) for one device, from 15 minutes
// to 30 days back. Drag across the chart to zoom in — the finer points of that span are fetched, since the
// history keeps them per second for the last hour, per minute for a week — and double-click (or "zoom out")
// to go back. Spans when ttmemd did not run are shaded; leaks, orphans and OOM records are marks on the
// time axis and listed under the chart. Loaded before app.js, which calls timelineFollow() on each refresh.
"use strict";

const TIMELINE_SLOTS = ["DRAM", "L1", "L1_SMALL", "TRACE", "CB"];
const SLOT_COLOURS = { DRAM: "#2e6fd0", L1: "#d0342c", L1_SMALL: "#d99a00", TRACE: "#7b4fc9", CB: "#2e9d4f" };
const RECORD_COLOURS = { leak: "#d0342c", orphan: "#7b4fc9", oom: "#d99a00" };
const SPANS = [["15m", 900], ["1h", 3600], ["6h", 21600], ["1d", 86400], ["7d", 604800], ["30d", 2592000]];
const TIMELINE_REFETCH_MS = 2000; // following "now": the history writes a point a second

const timeline = {
  device: null, // the first device the stats list, until one is picked
  span: 3600, // seconds back from now, when not zoomed
  zoom: null, // [since, until] in seconds since the epoch while zoomed in
  window: [0, 1], // the span shown, seconds
  answer: null, // /api/timeline's last answer
  records: [], // /api/history's, for the span
  shown: [], // the slots drawn, in series order
  chart: null,
  fetchedAt: 0,
  inFlight: false,
  error: "",
  requests: 0, // answers applied, for the browser test
};

/// The timeline as uPlot's columns: one x column (seconds) shared by every series, each slot's bytes in use
/// as a step that holds until its next point, and its peak over the interval each point closes. Gaps are
/// nulls, so no line is drawn across a span ttmemd did not see.
function timelineColumns(t) {
  const s = (ns) => ns / 1e9;
  const since = s(t.since_ns), until = s(t.until_ns);
  const xs = new Set([since, until]);
  for (const series of t.series) for (const [time] of series.points) xs.add(s(time));
  for (const g of t.gaps) {
    xs.add(s(g.from_ns));
    xs.add(s(g.from_ns) + 0.001);
    if (g.to_ns < t.until_ns) xs.add(s(g.to_ns));
  }
  const x = [...xs].filter((v) => v >= since && v <= until).sort((a, b) => a - b);
  const inGap = (v) => t.gaps.some((g) => v > s(g.from_ns) && v < s(g.to_ns));
  const columns = [x];
  const shown = [];
  for (const slot of TIMELINE_SLOTS) {
    const series = t.series.find((q) => q.slot === slot && q.pid === 0);
    if (!series || series.points.every(([, bytes, peak]) => peak === 0 && bytes === 0)) continue;
    const pts = series.points; // [time_ns, bytes, peak]
    const bytes = [], peaks = [];
    let at = -1; // the last point at or before x
    for (const v of x) {
      while (at + 1 < pts.length && s(pts[at + 1][0]) <= v) at++;
      const gap = inGap(v);
      bytes.push(at < 0 || gap ? null : pts[at][1]);
      // The interval a point closes is (previous point, point]: x lies in the next point's interval.
      const next = at >= 0 && s(pts[at][0]) === v ? pts[at] : pts[at + 1];
      peaks.push(gap || !next ? null : Math.max(next[1], next[2]));
    }
    columns.push(bytes, peaks);
    shown.push(slot);
  }
  return { columns, shown };
}

function timelinePath() {
  const now = Date.now() / 1000;
  const [since, until] = timeline.zoom || [now - timeline.span, now];
  timeline.window = [since, until];
  const device = timeline.device ?? 0;
  const q = new URLSearchParams({ device: String(device), since: String(Math.floor(since)), until: String(Math.ceil(until)) });
  const r = new URLSearchParams({ device: String(device), since: String(Math.floor(since)), until: String(Math.ceil(until)), kind: "leak,orphan,oom", limit: "200" });
  return [`/api/timeline?${q}`, `/api/history?${r}`];
}

async function timelineFetch() {
  if (timeline.inFlight) return;
  timeline.inFlight = true;
  timeline.fetchedAt = Date.now();
  try {
    const [tPath, hPath] = timelinePath();
    const [t, h] = await Promise.all([fetch(tPath, { cache: "no-store" }), fetch(hPath, { cache: "no-store" })]);
    if (!t.ok) {
      const why = await t.json().catch(() => ({ error: `HTTP ${t.status}` }));
      timeline.error = why.error || `HTTP ${t.status}`;
      timeline.answer = null;
    } else {
      timeline.error = "";
      timeline.answer = await t.json();
      timeline.records = h.ok ? (await h.json()).records : [];
    }
    timeline.requests++;
    timelineRender();
  } catch (e) {
    timeline.error = String(e);
    timelineRender();
  } finally {
    timeline.inFlight = false;
  }
}

/// From app.js's refresh: the devices to choose from, and a refetch when following now.
function timelineFollow(stats) {
  const ids = stats.devices.map((d) => d.id);
  if (timeline.device === null && ids.length) timeline.device = ids[0];
  const choices = [...new Set([...ids, timeline.device ?? 0])].sort((a, b) => a - b);
  setOptions(document.getElementById("timeline-device"), choices, choices.map(String), timeline.device ?? 0);
  if (!timeline.zoom && Date.now() - timeline.fetchedAt >= TIMELINE_REFETCH_MS) timelineFetch();
}

function timelineChart(box, shown) {
  const series = [{}];
  for (const slot of shown) {
    series.push({ label: slot, stroke: SLOT_COLOURS[slot], width: 2, paths: uPlot.paths.stepped({ align: 1 }), value: (u, v) => (v === null ? "-" : humanBytes(v)) });
    series.push({ label: `${slot} peak`, stroke: SLOT_COLOURS[slot], width: 1, dash: [4, 3], paths: uPlot.paths.stepped({ align: -1 }), value: (u, v) => (v === null ? "-" : humanBytes(v)) });
  }
  const shade = (u) => {
    const { ctx, bbox } = u;
    const t = timeline.answer;
    if (!t) return;
    ctx.save();
    ctx.fillStyle = "rgba(110, 110, 115, 0.18)";
    for (const g of t.gaps) {
      const a = u.valToPos(Math.max(g.from_ns / 1e9, u.scales.x.min), "x", true);
      const b = u.valToPos(Math.min(g.to_ns / 1e9, u.scales.x.max), "x", true);
      if (b > a) ctx.fillRect(a, bbox.top, b - a, bbox.height);
    }
    for (const r of timeline.records) {
      const x = u.valToPos(r.time_ns / 1e9, "x", true);
      if (x < bbox.left || x > bbox.left + bbox.width) continue;
      ctx.fillStyle = RECORD_COLOURS[r.kind] || "#6e6e73";
      ctx.fillRect(x - 1, bbox.top, 2, bbox.height);
    }
    ctx.restore();
  };
  return new uPlot(
    {
      width: Math.max(200, box.clientWidth),
      height: 220,
      scales: { x: { time: true, range: () => timeline.window }, y: { range: (u, min, max) => [0, Math.max(1, max) * 1.05] } },
      axes: [{}, { size: 70, values: (u, v) => v.map((b) => humanBytes(b)) }],
      series,
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: {
        draw: [shade],
        setSelect: [
          (u) => {
            if (u.select.width < 4) return;
            const since = u.posToVal(u.select.left, "x"), until = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
            timelineZoom([since, until]);
          },
        ],
      },
    },
    timelineColumns(timeline.answer).columns,
    box,
  );
}

function timelineZoom(span) {
  timeline.zoom = span && span[1] - span[0] >= 1 ? span : null;
  timelineFetch();
}

function timelineRender() {
  const box = document.getElementById("timeline");
  const note = document.getElementById("timeline-note");
  document.getElementById("timeline-out").hidden = !timeline.zoom;
  for (const b of document.querySelectorAll("#timeline-spans button"))
    b.classList.toggle("chosen", !timeline.zoom && Number(b.dataset.span) === timeline.span);
  const t = timeline.answer;
  if (!t) {
    if (timeline.chart) timeline.chart.destroy();
    timeline.chart = null;
    box.replaceChildren();
    note.textContent = timeline.error || "Loading the history…";
    return;
  }
  const { columns, shown } = timelineColumns(t);
  if (!timeline.chart || shown.join() !== timeline.shown.join()) {
    if (timeline.chart) timeline.chart.destroy();
    box.replaceChildren();
    timeline.shown = shown;
    timeline.chart = shown.length ? timelineChart(box, shown) : null;
  } else {
    timeline.chart.setData(columns);
  }
  const resolution = t.resolution_ns >= 60e9 ? `${t.resolution_ns / 60e9} min` : `${t.resolution_ns / 1e9} s`;
  note.textContent = shown.length
    ? `${clock(t.since_ns)} to ${clock(t.until_ns)}, a point every ${resolution}` + (timeline.zoom ? " (zoomed in)" : "")
    : `No memory in use on device ${t.device} in this span.`;
  const day = (ns) => new Date(ns / 1e6).toLocaleString();
  document.getElementById("timeline-gaps").replaceChildren(
    ...t.gaps.map((g) =>
      el("li", { "data-from": String(g.from_ns) }, g.to_ns >= t.until_ns ? `ttmemd not running since ${day(g.from_ns)}` : `ttmemd not running from ${day(g.from_ns)} to ${day(g.to_ns)}`),
    ),
  );
  const newest = timeline.records.slice(-12).reverse();
  document.getElementById("timeline-records").replaceChildren(
    ...newest.map((r) => {
      const mark = el("i");
      mark.style.background = RECORD_COLOURS[r.kind] || "#6e6e73";
      return el("li", { "data-kind": r.kind, "data-seq": String(r.seq) }, mark, el("time", {}, day(r.time_ns)), r.summary);
    }),
  );
}

function timelineSetup() {
  const spans = document.getElementById("timeline-spans");
  spans.replaceChildren(
    ...SPANS.map(([label, seconds]) => {
      const b = el("button", { type: "button", "data-span": String(seconds) }, label);
      b.addEventListener("click", () => {
        timeline.span = seconds;
        timelineZoom(null);
      });
      return b;
    }),
  );
  document.getElementById("timeline-out").addEventListener("click", () => timelineZoom(null));
  document.getElementById("timeline").addEventListener("dblclick", () => timelineZoom(null));
  document.getElementById("timeline-device").addEventListener("change", (e) => {
    timeline.device = Number(e.target.value);
    timelineFetch();
  });
  window.addEventListener("resize", () => {
    const box = document.getElementById("timeline");
    if (timeline.chart) timeline.chart.setSize({ width: Math.max(200, box.clientWidth), height: 220 });
  });
}
