// Reads a Chrome trace JSON file with a real trace parser (@tracerbench/trace-model, web/'s lockfile) and
// prints what it finds as JSON: processes with their names, counter tracks, async slices, instant events.
// tests/python/test_history.py runs it on `ttmem export --perfetto`'s file.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), "../../web/package.json"));
const { buildModel } = require("@tracerbench/trace-model");

const trace = JSON.parse(readFileSync(process.argv[2], "utf8"));
const model = buildModel(trace);
const out = { processes: [], counters: {}, async_slices: {}, instants: [] };
for (const p of model.processes) {
  out.processes.push({ id: p.id, name: p.name, events: p.events.length });
}
for (const e of model.events) {
  if (e.ph === "C") {
    const key = `${e.pid}/${e.name}`;
    out.counters[key] = Math.max(out.counters[key] ?? 0, ...Object.values(e.args));
  } else if (e.ph === "b") {
    const key = `${e.traceEvent.cat}/${e.name}`;
    out.async_slices[key] = (out.async_slices[key] ?? 0) + 1;
  } else if (e.ph === "i" || e.ph === "I") {
    out.instants.push({ name: e.name, pid: e.pid, summary: e.args?.summary ?? "" });
  }
}
// Every async begin has its end, as Perfetto pairs them: by category and id, the end not before the begin
// (a zero-length slice may come in either order among events of the same time).
const begins = new Map();
for (const e of model.events) {
  if (e.ph === "b") begins.set(`${e.traceEvent.cat}/${e.traceEvent.id}`, e.start);
}
const open = new Map(begins);
for (const e of model.events) {
  if (e.ph !== "e") continue;
  const k = `${e.traceEvent.cat}/${e.traceEvent.id}`;
  if (!begins.has(k)) throw new Error(`an end without a begin: ${k}`);
  if (e.start < begins.get(k)) throw new Error(`an async slice ends before it begins: ${k}`);
  open.delete(k);
}
out.unclosed = open.size;
console.log(JSON.stringify(out));
