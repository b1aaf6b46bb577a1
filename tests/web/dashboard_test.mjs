// The dashboard in a real browser (Debian's chromium, driven by puppeteer-core from web/'s lockfile),
// against a live ttmemd and a live workload: it shows the workload's devices and processes, follows an
// allocation and a kill -9 within a second, has no script errors, and fits a narrow window. Screenshots
// are kept in TTMEM_ARTIFACT_DIR.
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { once } from "node:events";
import * as readline from "node:readline";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(join(root, "web", "package.json"));
const puppeteer = require("puppeteer-core");
const bin = process.env.TTMEM_BIN_DIR || join(root, "build", "bin");
const artifacts = process.env.TTMEM_ARTIFACT_DIR || join(root, "build", "test-artifacts");
const chromium = process.env.TTMEM_CHROMIUM || "/usr/bin/chromium";

/// Starts a process; `lines` yields its stdout line by line.
function start(command, args, env = {}) {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return { child, lines };
}

async function lineMatching(stream, pattern, what) {
  const timer = setTimeout(() => {
    throw new Error(`no ${what} in 10 s`);
  }, 10_000);
  try {
    for (;;) {
      const { value, done } = await stream.next();
      if (done) throw new Error(`ended before ${what}`);
      const m = value.match(pattern);
      if (m) return m;
    }
  } finally {
    clearTimeout(timer);
  }
}

/// A ttmem-emu --step workload: each command answers "ok".
async function command(workload, line) {
  workload.child.stdin.write(line + "\n");
  const { value } = await workload.lines.next();
  assert.equal(value, "ok", `${line}: ${value}`);
}

const dir = mkdtempSync(join(tmpdir(), "ttmem-web-"));
const socket = join(dir, "ttmemd.sock");
mkdirSync(artifacts, { recursive: true });
const server = start(join(bin, "ttmemd"), ["--socket", socket, "--http", "127.0.0.1:0", "--state-dir", join(dir, "state")]);
let browser;
let workload;
try {
  const [, port] = await lineMatching(server.lines, /HTTP on http:\/\/127\.0\.0\.1:(\d+)\//, "HTTP port in ttmemd's log");
  const url = `http://127.0.0.1:${port}/`;
  workload = start(join(bin, "ttmem-emu"), ["--step", "-q"], { TTMEM_SOCKET: socket });
  await command(workload, "mesh n300");
  await command(workload, "alloc weights DRAM 64M site=model.py:12");
  await command(workload, "flush");

  browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"] });
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => {
    problems.push(`page error: ${e.message}`);
    console.error(`page error: ${e.message}`);
  });
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  page.on("requestfailed", (r) => !r.url().endsWith("/api/events") && problems.push(`request failed: ${r.url()}`));
  await page.setViewport({ width: 1280, height: 800 });
  await page.goto(url, { waitUntil: "load" });

  // The workload's two devices and its process rows, with the figures the server holds.
  await page.waitForSelector('.device[data-device="1"]', { timeout: 5000 });
  assert.equal(await page.$$eval(".device", (d) => d.length), 2);
  const pid = String(workload.child.pid);
  await page.waitForSelector(`#processes tr[data-pid="${pid}"][data-device="0"]`, { timeout: 5000 });
  const row = await page.$eval(`#processes tr[data-pid="${pid}"][data-device="0"]`, (r) => r.textContent);
  assert.match(row, /ttmem-emu/);
  assert.match(row, /64\.0 MiB/);
  const used = (device, type) =>
    page.$eval(`.device[data-device="${device}"]`, (card, t) => {
      const rows = [...card.querySelectorAll(".usage .type")];
      const i = rows.findIndex((s) => s.textContent === t);
      return Number(card.querySelectorAll(".usage .figures")[i].dataset.used);
    }, type);
  assert.equal(await used(0, "DRAM"), 64 << 20);
  // The largest free block per bank, as ttmemd's map has it.
  const stats = await (await fetch(`http://127.0.0.1:${port}/api/stats`)).json();
  const largest = await page.$eval('.device[data-device="0"]', (card) => {
    const rows = [...card.querySelectorAll(".usage .type")];
    const i = rows.findIndex((s) => s.textContent === "DRAM");
    const f = card.querySelectorAll(".usage .figures")[i];
    return [Number(f.dataset.largest), f.textContent];
  });
  assert.equal(largest[0], stats.devices[0].memory.DRAM.largest_free_block);
  assert.match(largest[1], /largest free .*\/bank/);

  // Buffers grouped by op: the mesh tensor made in prefill is one row, 2 buffers on 2 devices.
  await command(workload, "op prefill\nalloc kv DRAM 8M site=model.py:20\nalloc prefill_act L1 256K site=model.py:21\nend");
  await command(workload, "program attn cb=32Kx2");
  await command(workload, "run attn");
  await command(workload, "flush");
  const prefill = '#groups tr[data-key="prefill"][data-slot="DRAM"]';
  await page.waitForSelector(prefill, { timeout: 2000 }).catch(async (e) => {
    throw new Error(`${e.message}; the page says: ${await page.$eval("#status", (s) => s.title)}: ${await page.$eval("#groups-note", (t) => t.textContent)}; api: ${JSON.stringify(await (await fetch(`http://127.0.0.1:${port}/api/buffers?by=op`)).json())}`);
  });
  const cells = await page.$$eval(`${prefill} td`, (tds) => tds.map((t) => t.textContent));
  assert.deepEqual([cells[0], cells[2], cells[3], cells[5]], ["prefill", "16.0 MiB", "2", "2"]);
  await page.select("#group-by", "site");
  await page.waitForSelector('#groups tr[data-key="model.py:12"][data-slot="DRAM"]', { timeout: 2000 });
  assert.equal(await page.$eval("#groups th.key", (th) => th.textContent), "SITE");
  // Filtered to the workload's process and to sites containing "py:2": the prefill buffers only.
  await page.select("#group-pid", pid);
  await page.type("#group-text", "py:2");
  await page.waitForFunction(() => [...document.querySelectorAll("#groups tbody tr")].every((r) => /py:2/.test(r.dataset.key)) &&
    document.querySelectorAll("#groups tbody tr").length === 2, { timeout: 2000 });
  assert.match(await page.$eval(`#processes tr[data-pid="${pid}"] td.command`, (td) => td.textContent), /ttmem-emu --step/);

  // A refused allocation: its record, with the verdict, opens to the holders of the device then.
  workload.child.stdin.write("alloc huge DRAM 20G site=model.py:99\n");
  assert.match((await workload.lines.next()).value, /^error: .*Out of Memory/);
  await page.waitForSelector('#ooms li[data-verdict="exhausted"]', { timeout: 2000 });
  await page.click("#ooms li summary");
  await page.waitForSelector("#ooms details[open] table", { timeout: 1000 });
  const oomText = await page.$eval("#ooms li", (li) => li.textContent);
  assert.match(oomText, /was refused 20\.0 GiB of DRAM on device 0: exhausted/);
  assert.match(oomText, /per bank/);
  assert.match(oomText, new RegExp(`${pid}\\S*ttmem-emu --step`));

  // The address map of device 0's L1, block by block as ttmemd has it, with the program's CBs.
  const api = async (path) => (await fetch(`http://127.0.0.1:${port}${path}`)).json();
  const l1 = await api("/api/map?device=0&buffer_type=L1");
  assert.ok(l1.blocks.some((b) => b.use === "buffer") && l1.circular_buffers.length === 2, JSON.stringify(l1));
  await page.waitForFunction((n) => document.querySelectorAll("#map-cbs div").length === n, { timeout: 2000 },
    l1.circular_buffers.length);
  const drawn = await page.$$eval("#map div", (ds) => ds.map((d) => [Number(d.dataset.address), Number(d.dataset.size), d.dataset.use]));
  assert.deepEqual(drawn, l1.blocks.map((b) => [b.address, b.size, b.use]));
  assert.match(await page.$eval("#map-legend", (l) => l.textContent), /prefill/);
  await page.select("#map-type", "DRAM");
  const dram = await api("/api/map?device=0&buffer_type=DRAM");
  await page.waitForFunction((n) => document.querySelectorAll("#map div").length === n &&
    document.querySelector("#map-cbs").hidden, { timeout: 2000 }, dram.blocks.length);
  assert.match(await page.$eval("#map-figures", (f) => f.textContent), /free of .* per bank/);
  await page.select("#map-type", "L1");
  await page.waitForFunction(() => !document.querySelector("#map-cbs").hidden, { timeout: 2000 });

  // The timeline from ttmemd's history: device 0's DRAM and L1 as the history has them, the OOM record as a
  // mark and a line; a drag zooms in (the finer span is fetched), double-click zooms back out.
  await page.waitForFunction(() => {
    const t = window.ttmemTimeline;
    return t.chart && t.shown.includes("DRAM") && t.shown.includes("L1") && t.records.some((r) => r.kind === "oom");
  }, { timeout: 8000 });
  const history = await api(`/api/timeline?device=0&since=1h`);
  const dramNow = history.series.find((s) => s.slot === "DRAM" && s.pid === 0).points.at(-1)[1]; // [time_ns, bytes, peak]
  // What ttmemd holds now (the weights, the kv cache and the program's binary), once a point was written.
  assert.equal(dramNow, (await api("/api/stats")).devices[0].memory.DRAM.used);
  const drawnDram = await page.evaluate(() => {
    const t = window.ttmemTimeline;
    const column = t.chart.data[1 + 2 * t.shown.indexOf("DRAM")];
    return column.filter((v) => v !== null).at(-1);
  });
  assert.equal(drawnDram, dramNow, await page.evaluate(() => JSON.stringify({ a: window.ttmemTimeline.answer, d: window.ttmemTimeline.chart.data, s: window.ttmemTimeline.shown })));
  assert.match(await page.$eval('#timeline-records li[data-kind="oom"]', (li) => li.textContent), /20\.0 GiB|refused/);
  const zoomed = await page.evaluate(async () => {
    const t = window.ttmemTimeline;
    const before = t.requests;
    const u = t.chart;
    const left = u.valToPos(Date.now() / 1000 - 120, "x");
    const right = u.valToPos(Date.now() / 1000, "x");
    u.setSelect({ left, width: right - left, top: 0, height: u.bbox.height / devicePixelRatio });
    for (let i = 0; i < 100 && t.requests === before; i++) await new Promise((r) => setTimeout(r, 20));
    return { zoom: t.zoom, x: [u.scales.x.min, u.scales.x.max], out: !document.getElementById("timeline-out").hidden };
  });
  assert.ok(zoomed.zoom && zoomed.zoom[1] - zoomed.zoom[0] > 100 && zoomed.zoom[1] - zoomed.zoom[0] < 140, JSON.stringify(zoomed));
  assert.ok(Math.abs(zoomed.x[0] - zoomed.zoom[0]) < 1 && zoomed.out, JSON.stringify(zoomed));
  await page.click("#timeline", { count: 2 });
  await page.waitForFunction(() => window.ttmemTimeline.zoom === null && document.getElementById("timeline-out").hidden, { timeout: 2000 });
  await page.click('#timeline-spans button[data-span="900"]');
  await page.waitForFunction(() => {
    const x = window.ttmemTimeline.chart.scales.x;
    return Math.abs(x.max - x.min - 900) < 5;
  }, { timeout: 2000 });

  await page.waitForSelector(".device canvas", { timeout: 5000 }); // the history chart is drawn
  // Its time axis spans ten minutes from the first sample, not years around one point.
  const span = await page.evaluate(() => {
    const x = window.ttmemDashboard.cards.get(0).chart.scales.x;
    return x.max - x.min;
  });
  assert.ok(span >= 595 && span <= 700, `the chart's time axis spans ${span} s`);
  await page.screenshot({ path: join(artifacts, "dashboard-1280x800.png"), fullPage: true });

  // An allocation shows within a second of being applied.
  const l1Before = await used(0, "L1");
  await command(workload, "alloc act L1 1M");
  await command(workload, "flush");
  let t0 = Date.now();
  await page.waitForFunction(
    (before) => {
      const card = document.querySelector('.device[data-device="0"]');
      const rows = [...card.querySelectorAll(".usage .type")];
      const i = rows.findIndex((s) => s.textContent === "L1");
      return Number(card.querySelectorAll(".usage .figures")[i].dataset.used) > before;
    },
    { timeout: 1000, polling: 20 },
    l1Before,
  );
  console.log(`allocation shown after ${Date.now() - t0} ms`);

  // A process killed with -9: its rows go and its orphan record appears, within a second of ttmemd
  // reclaiming it.
  workload.child.kill("SIGKILL");
  await once(workload.child, "exit");
  t0 = Date.now();
  await page.waitForSelector(`#orphans li[data-pid="${pid}"]`, { timeout: 1000 });
  await page.waitForFunction((p) => !document.querySelector(`#processes tr[data-pid="${p}"]`), { timeout: 1000 }, pid);
  console.log(`death shown after ${Date.now() - t0} ms`);
  assert.match(await page.$eval("#orphans", (o) => o.textContent), /died holding/);
  // The history keeps the death too: the orphan is a mark and a line of the timeline within a few seconds.
  await page.waitForSelector('#timeline-records li[data-kind="orphan"]', { timeout: 5000 });

  // Sorting by a column header.
  await page.click('#processes th[data-key="pid"]');
  assert.equal(await page.$eval('#processes th[data-key="pid"]', (th) => th.classList.contains("sorted")), true);

  // A narrow window: nothing wider than the window (tables scroll inside their box).
  await page.setViewport({ width: 420, height: 800 });
  await new Promise((r) => setTimeout(r, 300));
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than a 420 px window`);
  await page.screenshot({ path: join(artifacts, "dashboard-420x800.png"), fullPage: true });

  assert.deepEqual(problems, []);
  console.log(`ok: screenshots in ${artifacts}`);
} finally {
  if (browser) await browser.close();
  if (workload && workload.child.exitCode === null) workload.child.kill("SIGKILL");
  server.child.kill("SIGTERM");
  await once(server.child, "exit");
  rmSync(dir, { recursive: true, force: true });
}
