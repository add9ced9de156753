// Turns the rows of bench/docker.sh, bench/physical.sh and bench/inspect.sh into their tables.
//   node bench/summarize-case.mjs docker   META.json RESULTS.tsv STARTUP.jsonl
//   node bench/summarize-case.mjs physical META.json RESULTS.tsv
//   node bench/summarize-case.mjs inspect  META.json RESULTS.tsv
import { existsSync, readFileSync } from "node:fs";

const [kind, metaPath, tsvPath, extraPath] = process.argv.slice(2);
const meta = JSON.parse(readFileSync(metaPath, "utf8"));

// ---- helpers ---------------------------------------------------------------------------------
const median = (xs) => {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const s = (ms, digits = 1) => (ms === undefined || Number.isNaN(ms) ? "-" : (ms / 1000).toFixed(digits));
const pad = (x, n) => String(x).padStart(n);
const padEnd = (x, n) => String(x).padEnd(n);
const mb = (bytes) => Math.round(bytes / 1048576);
const ok = (good) => (good ? "OK" : "MISSED");
const out = [];
const add = (line = "") => out.push(line);

function readRows(path) {
  const [header, ...lines] = readFileSync(path, "utf8").trim().split("\n");
  const cols = header.split("\t");
  return lines.map((line) => {
    const f = Object.fromEntries(line.split("\t").map((v, i) => [cols[i], v]));
    const num = (k) => (f[k] === undefined || f[k] === "" ? undefined : Number(f[k]));
    return { f, num };
  });
}

/** A run of `attest drill`: its drill document, phase timings and per-check durations. */
function attestRun(base, jsonPath) {
  const doc = JSON.parse(readFileSync(jsonPath, "utf8"));
  const d = doc.drills[0];
  const t = d.timings;
  const check = {};
  for (const c of d.checks) check[c.name] = c.durationMs;
  const logPath = jsonPath.replace(/\.json$/, ".log");
  let startup;
  if (existsSync(logPath)) {
    for (const line of readFileSync(logPath, "utf8").split("\n")) {
      if (!line.includes("docker sandbox ready")) continue;
      try {
        startup = JSON.parse(line);
      } catch {}
    }
  }
  return {
    ...base,
    verdict: d.verdict,
    drill: t.totalMs,
    provision: t.provisionMs + (t.preflightMs ?? 0),
    restore: t.restoreMs,
    recovery: t.recoveryMs,
    checks: t.checksMs,
    teardown: t.teardownMs,
    outside: base.wall - t.totalMs,
    check,
    reached: d.reached,
    notes: d.notes ?? [],
    startup,
    doc: d,
  };
}

function wallTable(variants, of) {
  add(`  ${padEnd("wall time (s)", 42)}${pad("median", 8)}${pad("min", 8)}${pad("max", 8)}   per round`);
  for (const [v, label] of variants) {
    const w = of(v).map((r) => r.wall);
    if (!w.length) continue;
    add(
      `  ${padEnd(label, 42)}${pad(s(median(w)), 8)}${pad(s(Math.min(...w)), 8)}${pad(s(Math.max(...w)), 8)}   ${w.map((x) => s(x)).join(" ")}`,
    );
  }
}

function ratioLine(name, num, den, of, note) {
  const a = median(of(num).map((r) => r.wall));
  const b = median(of(den).map((r) => r.wall));
  if (a === undefined || b === undefined) return undefined;
  const perRound = median(
    of(num).map((r) => r.wall / (of(den).find((x) => x.round === r.round)?.wall ?? Number.NaN)),
  );
  const ratio = a / b;
  add(
    `  ${name}  ${ratio.toFixed(3)}   ${note(ratio)}   (median of the per-round ratios: ${perRound.toFixed(3)})`,
  );
  return ratio;
}

function phaseTable(variants, of, phases, labels = {}) {
  add(`  ${padEnd("phase medians (s)", 42)}${phases.map((p) => pad(labels[p] ?? p, 10)).join("")}`);
  for (const [v, label] of variants) {
    if (!of(v).length) continue;
    add(`  ${padEnd(label, 42)}${phases.map((p) => pad(s(median(of(v).map((r) => r[p]))), 10)).join("")}`);
  }
}

// ---- docker ----------------------------------------------------------------------------------
function docker() {
  const runs = readRows(tsvPath).map(({ f, num }) => {
    const base = {
      round: Number(f.round),
      variant: f.variant,
      wall: num("wall_ms"),
      rssKb: num("self_rss_kb"),
    };
    if (f.json) return attestRun(base, f.json);
    return {
      ...base,
      provision: num("provision_ms"),
      restore: num("restore_ms"),
      checks: num("checks_ms"),
      teardown: num("teardown_ms"),
      container: num("container_ms"),
      drill: num("wall_ms"),
      outside: 0,
      check: { amcheck: num("checks_ms") },
    };
  });
  const of = (v) => runs.filter((r) => r.variant === v).sort((a, b) => a.round - b.round);
  const VARIANTS = [
    ["native", "(a) native by hand, on the host"],
    ["local", "(b) attest drill, runtime local"],
    ["docker", "(c) attest drill, runtime docker"],
    ["docker-native", "(d) by hand in a container (docker run)"],
  ];
  add(`Attest docker sandbox benchmark — ${new Date().toISOString().slice(0, 16)}Z`);
  add(
    `  dataset   ~${meta.sizeMb} MB requested: database ${mb(meta.dbBytes)} MB; dump ${mb(meta.dumpBytes)} MB (pg_dump -Fc, the logical benchmark's cached dump)`,
  );
  add(
    `  setup     PostgreSQL ${meta.pgVersion}, image ${meta.image} (${meta.imageId}, never pulled), Docker engine ${meta.dockerVersion} (sandbox network: none),`,
  );
  add(
    `            pg_restore -j${meta.jobs}, pg_amcheck --heapallindexed --jobs 2; Attest checks: amcheck (full_read, write, inventory compare off);`,
  );
  add(
    `            ${meta.cpus} CPUs, ${meta.rounds} round(s) alternated (order rotated); load ${meta.loadStart} → ${meta.loadEnd}; ${Math.round(meta.elapsedMs / 60000)} min`,
  );
  add();
  wallTable(VARIANTS, of);
  add();
  ratioLine("c/d", "docker", "docker-native", of, (r) => `target ≤ 1.05   ${ok(r <= 1.05)}`);
  ratioLine("c/b", "docker", "local", of, () => "(docker runtime vs local runtime, both attest drill)");
  ratioLine("d/a", "docker-native", "native", of, () => "(a container vs the host, both by hand)");
  ratioLine("b/a", "local", "native", of, () => "(the logical benchmark's b/a, this run)");
  for (const [v, label] of VARIANTS.filter(([v]) => v === "local" || v === "docker")) {
    const rss = of(v).map((r) => r.rssKb);
    if (rss.some((x) => x !== undefined))
      add(
        `  ${label.slice(0, 3)} Attest peak RSS (own process): median ${Math.round(median(rss) / 1024)} MB, max ${Math.round(Math.max(...rss.filter(Boolean)) / 1024)} MB`,
      );
  }
  add();
  phaseTable(VARIANTS, of, ["provision", "restore", "checks", "teardown", "drill", "outside", "wall"], {
    outside: "outside¹",
  });
  add();
  const CHECKS = ["server_up", "inventory", "amcheck"];
  add(`  ${padEnd("check medians (s)", 42)}${CHECKS.map((c) => pad(c, 10)).join("")}`);
  for (const [v, label] of VARIANTS)
    add(
      `  ${padEnd(label, 42)}${CHECKS.map((c) => pad(s(median(of(v).map((r) => r.check?.[c]))), 10)).join("")}`,
    );
  add();
  add("  sandbox start, docker runtime (container created → server accepting connections)     target < 2 s");
  const inDrill = of("docker")
    .map((r) => r.startup)
    .filter(Boolean);
  const parts = ["containerMs", "setupMs", "initdbMs", "serverMs"];
  const partText = (xs) =>
    parts.map((p) => `${p.replace("Ms", "")} ${s(median(xs.map((x) => x[p])), 2)}`).join(", ");
  if (inDrill.length) {
    const tot = median(inDrill.map((x) => x.totalMs));
    add(
      `    in the drills (c):  median ${s(tot, 2)} s  [${partText(inDrill)}]; ` +
        `timings.provisionMs median ${s(median(of("docker").map((r) => r.provision)), 2)} s   ${ok(tot < 2000)}`,
    );
  } else {
    add(
      `    in the drills (c):  timings.provisionMs median ${s(median(of("docker").map((r) => r.provision)), 2)} s`,
    );
  }
  const samples = existsSync(extraPath ?? "")
    ? readFileSync(extraPath, "utf8")
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
  if (samples.length) {
    const tot = samples.map((x) => x.totalMs);
    const warm = samples.length > 1 ? samples.slice(1) : samples;
    add(
      `    dedicated (${samples.length} × DockerRuntime.provision(init) + destroy()):  median ${s(median(tot), 2)} s, min ${s(Math.min(...tot), 2)}, max ${s(Math.max(...tot), 2)}` +
        ` (first, with engine connect + image look-up: ${s(samples[0].provisionMs, 2)} s)   ${ok(median(tot) < 2000)}`,
    );
    add(
      `      [${partText(warm)}; provision() wall ${s(median(warm.map((x) => x.provisionMs)), 2)}; destroy ${s(median(samples.map((x) => x.destroyMs)), 2)}]`,
    );
  }
  const cs = of("docker-native").map((r) => r.container);
  if (cs.length)
    add(`    by hand (d): docker run → first command in the container: median ${s(median(cs), 2)} s`);
  add();
  add(
    `  containers left after the run: ${meta.leftBench} with ${meta.label}, ${meta.leftAttest} Attest sandboxes of the bench   ${ok(meta.leftBench === 0 && meta.leftAttest === 0)}` +
      `   (attest.run containers on the engine, anyone's: ${meta.leftAll})`,
  );
  add();
  add(
    "  ¹ outside = wall − the drill's own totalMs (node start-up, config, sandbox sweep, listing, history/run JSON).",
  );
  add(
    "    (d) phases from marks printed inside the container: provision = docker run → server up (container",
  );
  add("    start, initdb, pg_ctl start); teardown = pg_ctl stop + container exit + --rm removal.");
}

// ---- physical --------------------------------------------------------------------------------
function physical() {
  const runs = readRows(tsvPath).map(({ f, num }) => {
    const base = {
      round: Number(f.round),
      variant: f.variant,
      wall: num("wall_ms"),
      rssKb: num("self_rss_kb"),
    };
    if (f.json) {
      const r = attestRun(base, f.json);
      r.replayBytes = r.reached?.lsn ? Number(lsn(r.reached.lsn) - lsn(meta.startLsn)) : undefined;
      return r;
    }
    return {
      ...base,
      restore: num("restore_ms"),
      recovery: num("recovery_ms"),
      checks: num("checks_ms"),
      teardown: num("teardown_ms"),
      provision: 0,
      drill: num("wall_ms"),
      outside: 0,
      replayBytes: f.reached_lsn ? Number(lsn(f.reached_lsn) - lsn(meta.startLsn)) : undefined,
      reachedLsn: f.reached_lsn,
      check: { amcheck: num("checks_ms") },
    };
  });
  const of = (v) => runs.filter((r) => r.variant === v).sort((a, b) => a.round - b.round);
  const VARIANTS = [
    ["native", "(a) by hand (tar -xzf, recovery, amcheck)"],
    ["attest", "(b) attest drill, basebackup, latest"],
  ];
  add(`Attest physical drill benchmark — ${new Date().toISOString().slice(0, 16)}Z`);
  add(
    `  dataset   ~${meta.sizeMb} MB requested: pgbench scale ${meta.scale}, database ${mb(meta.dbBytes)} MB; base.tar.gz ${mb(meta.backupBytes)} MB` +
      ` (pg_basebackup -Ft -z -c fast -X none, with backup_manifest); data checksums ${meta.checksums}`,
  );
  add(
    `  WAL       ${meta.walSegments} archived segments after the backup's start (${mb(meta.walSegments * meta.segSize)} MB; ${meta.startLsn} → ${meta.endLsn} = ${mb(meta.walBytes)} MB of LSN),` +
      ` from ${meta.trafficSeconds} s of pgbench (-c2 -j2, ${meta.tps} tps) after the backup`,
  );
  add(
    `  setup     PostgreSQL ${meta.pgVersion}, local runtime, ${meta.cpus} CPUs, ${meta.rounds} round(s) alternated (order rotated); load ${meta.loadStart} → ${meta.loadEnd}; ${Math.round(meta.elapsedMs / 60000)} min`,
  );
  add(
    "            both: the throwaway settings (fsync off …), restore_command copying from the archive, target = end of archive, promote;",
  );
  add(
    "            pg_amcheck --heapallindexed --install-missing --jobs 2 (by hand: --all; Attest: every restored database)",
  );
  add();
  wallTable(VARIANTS, of);
  add();
  ratioLine("b/a", "attest", "native", of, (r) => `target ≤ 1.05   ${ok(r <= 1.05)}`);
  const rss = of("attest").map((r) => r.rssKb);
  if (rss.some((x) => x !== undefined))
    add(
      `  (b) Attest peak RSS (own process): median ${Math.round(median(rss) / 1024)} MB, max ${Math.round(Math.max(...rss.filter(Boolean)) / 1024)} MB`,
    );
  add();
  phaseTable(
    VARIANTS,
    of,
    ["provision", "restore", "recovery", "checks", "teardown", "drill", "outside", "wall"],
    { restore: "extract²", outside: "outside¹" },
  );
  add();
  const CHECKS = ["server_up", "inventory", "amcheck", "checksum_failures", "pg_checksums"];
  add(
    `  ${padEnd("check medians (s)", 42)}${CHECKS.map((c) => pad(c, Math.max(c.length + 2, 12))).join("")}`,
  );
  for (const [v, label] of VARIANTS)
    add(
      `  ${padEnd(label, 42)}${CHECKS.map((c) => pad(s(median(of(v).map((r) => r.check?.[c]))), Math.max(c.length + 2, 12))).join("")}`,
    );
  add();
  add("  WAL replay (recovery start → promoted; bytes = reached LSN − backup start LSN)");
  for (const [v, label] of VARIANTS) {
    const rs = of(v).filter((r) => r.replayBytes && r.recovery);
    if (!rs.length) continue;
    const rate = median(rs.map((r) => r.replayBytes / 1048576 / (r.recovery / 1000)));
    const segRate = median(rs.map((r) => (meta.walSegments * meta.segSize) / 1048576 / (r.recovery / 1000)));
    add(
      `    ${padEnd(label, 42)} ${mb(median(rs.map((r) => r.replayBytes)))} MB in ${s(median(rs.map((r) => r.recovery)))} s:` +
        ` ${rate.toFixed(1)} MB/s (archived segment bytes: ${segRate.toFixed(1)} MB/s)` +
        `; reached ${v === "attest" ? rs[0].reached?.lsn : rs[0].reachedLsn}`,
    );
  }
  if (meta.verifyBackupMs !== undefined)
    add(
      `  pg_verifybackup of this backup by hand (once, after the rounds; Attest runs it in every drill, it cannot be turned off\n    while a backup_manifest is present): ${s(meta.verifyBackupMs)} s`,
    );
  add();
  add(
    "  ¹ outside = wall − the drill's own totalMs (node start-up, config, sandbox sweep, listing the source and",
  );
  add("    reading the WAL archive, pg_waldump of its newest segments, history/run JSON).");
  add(
    "  ² extract: by hand tar -xzf + recovery.signal/settings; Attest's restore phase = extraction (node gunzip →",
  );
  add(
    "    tar -x) + pg_verifybackup against the manifest + data-directory preparation + its own login set-up.",
  );
  add(
    "    Checks that cannot be turned off for a physical drill: server_up, inventory (exact row counts of every",
  );
  add("    table), checksum_failures and pg_checksums (both skip at once when data checksums are off).");
}

function lsn(text) {
  const [hi, lo] = text.split("/");
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

// ---- inspect ---------------------------------------------------------------------------------
function inspect() {
  const runs = readRows(tsvPath).map(({ f, num }) => ({
    command: f.command,
    run: Number(f.run),
    wall: num("wall_ms"),
    exit: num("exit"),
    gap: f.gap_reported === "yes",
    rssKb: num("self_rss_kb"),
  }));
  add(`Attest WAL archive inspection benchmark — ${new Date().toISOString().slice(0, 16)}Z`);
  add(
    `  archive   ${meta.segments.toLocaleString("en")} empty files named as timeline-1 segments ${meta.first} … ${meta.last}` +
      ` with one gap (${meta.gap}), plus ${meta.history}; a fake plain base backup starting at ${meta.backupStart}`,
  );
  add(
    `  setup     node ${meta.node}, ${meta.cpus} CPUs, ${meta.runs} runs per command, end to end (node start-up included); load ${meta.loadStart} → ${meta.loadEnd}`,
  );
  add();
  add(
    `  ${padEnd("wall time (s)", 42)}${pad("median", 8)}${pad("min", 8)}${pad("max", 8)}   per run                      gap reported`,
  );
  for (const cmd of [...new Set(runs.map((r) => r.command))]) {
    const rs = runs.filter((r) => r.command === cmd);
    const w = rs.map((r) => r.wall);
    const m = median(w);
    add(
      `  ${padEnd(cmd, 42)}${pad(s(m, 2), 8)}${pad(s(Math.min(...w), 2), 8)}${pad(s(Math.max(...w), 2), 8)}   ${padEnd(w.map((x) => s(x, 2)).join(" "), 28)} ${rs.every((r) => r.gap) ? "yes" : "NO"}` +
        `   target < 2 s ${ok(m < 2000)}`,
    );
  }
  const rss = runs.map((r) => r.rssKb).filter(Boolean);
  if (rss.length)
    add(
      `  Attest peak RSS (own process): median ${Math.round(median(rss) / 1024)} MB, max ${Math.round(Math.max(...rss) / 1024)} MB`,
    );
  add();
  add(`  the gap as reported: ${meta.gapMessage}`);
  if (meta.otherFindings) add(`  other findings: ${meta.otherFindings}`);
}

if (kind === "docker") docker();
else if (kind === "physical") physical();
else if (kind === "inspect") inspect();
else throw new Error(`unknown kind ${kind}`);
console.log(out.join("\n"));
