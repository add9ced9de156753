// Turns the rows bench/logical.sh collected into the benchmark table (medians of every round).
//   node bench/summarize.mjs [--rows] META.json RESULTS.tsv
// --rows prints one enriched TSV row per run instead (phases and check times read from Attest's JSON).
import { readFileSync } from "node:fs";

const args = process.argv.slice(2);
const rowsOnly = args[0] === "--rows";
if (rowsOnly) args.shift();
const [metaPath, tsvPath] = args;
const meta = JSON.parse(readFileSync(metaPath, "utf8"));

const CHECKS = ["server_up", "full_read", "inventory", "amcheck", "write"];
const [header, ...lines] = readFileSync(tsvPath, "utf8").trim().split("\n");
const cols = header.split("\t");
const runs = lines.map((line) => {
  const f = Object.fromEntries(line.split("\t").map((v, i) => [cols[i], v]));
  const num = (k) => (f[k] === undefined || f[k] === "" ? undefined : Number(f[k]));
  const run = {
    round: Number(f.round),
    variant: f.variant,
    wall: num("wall_ms"),
    selfRssKb: num("self_rss_kb"),
    treeRssKb: num("tree_rss_kb"),
    provision: num("provision_ms"),
    restore: num("restore_ms"),
    checks: num("checks_ms"),
    teardown: num("teardown_ms"),
    check: {},
  };
  if (f.variant === "native") {
    run.check.amcheck = run.checks;
    run.drill = [run.provision, run.restore, run.checks, run.teardown].reduce((a, b) => a + b, 0);
  } else {
    const doc = JSON.parse(readFileSync(f.json, "utf8"));
    const d = doc.drills[0];
    run.verdict = d.verdict;
    run.provision = d.timings.provisionMs + (d.timings.preflightMs ?? 0);
    run.restore = d.timings.restoreMs + d.timings.recoveryMs;
    run.checks = d.timings.checksMs;
    run.teardown = d.timings.teardownMs;
    run.drill = d.timings.totalMs;
    for (const c of d.checks) run.check[c.name] = c.durationMs;
  }
  run.outside = run.wall - run.drill;
  return run;
});

if (rowsOnly) {
  const keys = ["round", "variant", "wall", "drill", "outside", "provision", "restore", "checks", "teardown"];
  console.log(
    [
      ...keys.map((k) => `${k}_ms`.replace(/^(round|variant)_ms$/, "$1")),
      ...CHECKS.map((c) => `${c}_ms`),
      "self_rss_kb",
      "tree_rss_kb",
    ].join("\t"),
  );
  for (const r of runs)
    console.log(
      [
        ...keys.map((k) => r[k]),
        ...CHECKS.map((c) => r.check[c] ?? ""),
        r.selfRssKb ?? "",
        r.treeRssKb ?? "",
      ].join("\t"),
    );
  process.exit(0);
}

const median = (xs) => {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const of = (variant) => runs.filter((r) => r.variant === variant).sort((a, b) => a.round - b.round);
const med = (variant, pick) => median(of(variant).map(pick));
const s = (ms) => (ms === undefined ? "-" : (ms / 1000).toFixed(1));
const mb = (kb) => (kb === undefined ? "-" : `${Math.round(kb / 1024)} MB`);
const pad = (x, n) => String(x).padStart(n);
const padEnd = (x, n) => String(x).padEnd(n);

const VARIANTS = [
  ["native", "(a) native by hand"],
  ["same", "(b) attest drill, same checks"],
  ["default", "(c) attest drill, default checks"],
].filter(([v]) => of(v).length > 0);

const out = [];
const add = (line = "") => out.push(line);
add(`Attest logical drill benchmark — ${new Date().toISOString().slice(0, 16)}Z`);
add(
  `  dataset   ~${meta.sizeMb} MB requested: database ${Math.round(meta.dbBytes / 1048576)} MB ` +
    `(pgbench scale ${meta.pgbenchScale} + ${meta.wideRows.toLocaleString("en")} wide rows); ` +
    `dump ${Math.round(meta.dumpBytes / 1048576)} MB (pg_dump -Fc)`,
);
add(
  `  setup     PostgreSQL ${meta.pgVersion}, pg_restore -j${meta.jobs}, pg_amcheck --heapallindexed --jobs 2, ` +
    `${meta.cpus} CPUs, ${meta.rounds} round(s) alternated (order rotated); load ${meta.loadStart} → ${meta.loadEnd}; ` +
    `${Math.round(meta.elapsedMs / 60000)} min`,
);
add();
add(`  ${padEnd("wall time (s)", 34)}${pad("median", 8)}${pad("min", 8)}${pad("max", 8)}   per round`);
for (const [v, label] of VARIANTS) {
  const w = of(v).map((r) => r.wall);
  add(
    `  ${padEnd(label, 34)}${pad(s(median(w)), 8)}${pad(s(Math.min(...w)), 8)}${pad(s(Math.max(...w)), 8)}   ${w.map(s).join(" ")}`,
  );
}
add();
const a = med("native", (r) => r.wall);
const ratio = (v) => med(v, (r) => r.wall) / a;
const perRound = (v) =>
  median(of(v).map((r) => r.wall / (of("native").find((n) => n.round === r.round)?.wall ?? Number.NaN)));
if (of("same").length) {
  const b = ratio("same");
  add(
    `  b/a  ${b.toFixed(3)}   target ≤ 1.05   ${b <= 1.05 ? "OK" : "MISSED"}   (median of the per-round ratios: ${perRound("same").toFixed(3)})`,
  );
}
if (of("default").length) {
  const c = ratio("default");
  add(
    `  c/a  ${c.toFixed(3)}   (per-round median ${perRound("default").toFixed(3)}; default checks add full read, inventory compare, write probe: more work than (a))`,
  );
}
for (const [v, label] of VARIANTS.filter(([v]) => v !== "native")) {
  const self = Math.max(...of(v).map((r) => r.selfRssKb ?? 0));
  add(
    `  ${label.slice(0, 3)} Attest peak RSS (own process, VmHWM): median ${mb(med(v, (r) => r.selfRssKb))}, max ${mb(self)}` +
      `   target < 150 MB   ${self < 150 * 1024 ? "OK" : "MISSED"}` +
      `   [/usr/bin/time %M, incl. waited children: ${mb(med(v, (r) => r.treeRssKb))}]`,
  );
}
add(`  dump size ${Math.round(meta.dumpBytes / 1048576)} MB (${meta.dumpBytes} bytes)`);
add();
const phases = ["provision", "restore", "checks", "teardown", "drill", "outside", "wall"];
add(
  `  ${padEnd("phase medians (s)", 34)}${phases.map((p) => pad(p === "drill" ? "drill" : p === "outside" ? "outside¹" : p, 10)).join("")}`,
);
for (const [v, label] of VARIANTS)
  add(`  ${padEnd(label, 34)}${phases.map((p) => pad(s(med(v, (r) => r[p])), 10)).join("")}`);
add();
add(`  ${padEnd("check medians (s)", 34)}${CHECKS.map((c) => pad(c, 10)).join("")}`);
for (const [v, label] of VARIANTS)
  add(`  ${padEnd(label, 34)}${CHECKS.map((c) => pad(s(med(v, (r) => r.check[c])), 10)).join("")}`);
add();
add("  ¹ outside = wall − the drill's own totalMs: node start-up, config, sandbox sweep, listing the");
add("    source, writing history/run JSON (native: 0). Attest's provision includes its preflight (TOC");
add("    read), its restore the roles from the TOC and CREATE DATABASE; native restore = createdb +");
add("    pg_restore. Native checks = the row counts of Attest's inventory check (always on) + pg_amcheck.");
console.log(out.join("\n"));
