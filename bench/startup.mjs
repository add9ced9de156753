// Attest's fixed cost outside the drill: `--version`, `--help`, and a drill of a tiny plain dump
// in the local runtime, whose wall time minus the drill's own timings.totalMs is node start-up,
// module loading, config, listing, history and the run document.
//
//   node bench/startup.mjs [--rounds N] [DIST ...]        (default: dist; run from the repo root)
//
// Several DISTs (compiled copies inside the repository, e.g. dist and a saved older one) are
// measured in alternation, round by round, so a busy machine weighs on each alike; medians are
// printed. Needs the dumps fixture (fixtures/generated/dumps, built by the tests) and what a
// local drill needs (bubblewrap, the sandbox user).
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const args = process.argv.slice(2);
let rounds = 5;
const dists = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--rounds") rounds = Number(args[++i]);
  else dists.push(resolve(args[i]));
}
if (!dists.length) dists.push(resolve("dist"));
if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds takes an integer ≥ 1");
for (const d of dists)
  if (!existsSync(join(d, "cli", "main.js"))) throw new Error(`${d}/cli/main.js does not exist`);

const dump = resolve("fixtures/generated/dumps/plain/sales-eu_20261120T0300.sql");
if (!existsSync(dump))
  throw new Error(`${dump} is missing: build the dumps fixture first (bash fixtures/build-dumps.sh)`);
const majors = readdirSync("/usr/lib/postgresql").filter((v) => /^\d+$/.test(v));
const bin = `/usr/lib/postgresql/${majors.sort((a, b) => Number(b) - Number(a))[0]}/bin`;

const work = mkdtempSync(join(tmpdir(), "attest-startup-"));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

/** Runs the CLI once; returns the wall time (ms) and standard output. */
function cli(dist, argv) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [join(dist, "cli", "main.js"), ...argv], { encoding: "utf8" });
  return { wall: ms(t0), stdout: r.stdout, status: r.status, stderr: r.stderr };
}

try {
  const src = join(work, "src");
  spawnSync("mkdir", ["-m", "755", src]);
  copyFileSync(dump, join(src, "sales-eu_20261120T0300.sql"));
  spawnSync("chmod", ["-R", "a+rX", work]);
  const rows = new Map(dists.map((d) => [d, { version: [], help: [], wall: [], total: [], outside: [] }]));
  for (let r = 0; r < rounds; r++) {
    for (const dist of r % 2 ? [...dists].reverse() : dists) {
      const row = rows.get(dist);
      row.version.push(cli(dist, ["--version"]).wall);
      row.help.push(cli(dist, ["--help"]).wall);
      // a fresh history each time: a growing CSV would weigh on the later rounds
      const reports = mkdtempSync(join(work, "reports-"));
      const config = join(reports, "attest.yml");
      writeFileSync(
        config,
        `organization: { name: startup bench }
sandbox: { runtime: local, timeout: 10m, local: { bin_dir: "${bin}" } }
sources:
  - name: tiny
    type: dump-dir
    path: "${src}"
    checks: { amcheck: false, full_read: false, write: false, inventory: { compare: false } }
history: { csv: "${reports}/history.csv" }
reports: { dir: "${reports}", pdf: false, json: true }
`,
      );
      const d = cli(dist, ["drill", "--config", config, "--source", "tiny", "--json", "--no-mail"]);
      const drill = JSON.parse(d.stdout || "{}").drills?.[0];
      if (drill?.verdict !== "pass")
        throw new Error(`the drill did not pass (exit ${d.status}): ${d.stderr.slice(-500)}`);
      row.wall.push(d.wall);
      row.total.push(drill.timings.totalMs);
      row.outside.push(d.wall - drill.timings.totalMs);
    }
  }
  console.log(`medians of ${rounds} round(s), ms`);
  console.log(["dist", "--version", "--help", "drill wall", "drill totalMs", "outside"].join("\t"));
  for (const [dist, row] of rows)
    console.log(
      [dist, row.version, row.help, row.wall, row.total, row.outside]
        .map((v, i) => (i === 0 ? v : Math.round(median(v))))
        .join("\t"),
    );
} finally {
  rmSync(work, { recursive: true, force: true });
}
