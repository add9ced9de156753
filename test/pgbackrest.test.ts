/** `type: pgbackrest` end to end: the real CLI, a real pgBackRest repository, real sandboxes. */
import { execFileSync } from "node:child_process";
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backup, RunResult } from "../src/model.js";
import { attest, localSandboxes, workspace } from "./support/cli.js";

/** Root of the generated fixture. */
const PGBR = resolve("fixtures/generated/pgbackrest");

/** What fixtures/build-pgbackrest.sh recorded. */
interface Expected {
  stanza: string;
  system_identifier: string;
  markers: Array<{ id: number; label: string; committedAt: string }>;
  backups: Array<{
    label: string;
    type: string;
    start: string;
    stop: string;
    size: number;
    repoSize: number;
    repoDelta: number;
    archiveStart: string;
    archiveStop: string;
  }>;
  full: string;
  incr: string;
  latest: string[];
  damaged: { removed_file: string; removed_segment: string };
}

/** The run document, or a failure that shows what the CLI said instead. */
function parseRun(r: { stdout: string; stderr: string; code: number | null }): RunResult {
  try {
    return JSON.parse(r.stdout) as RunResult;
  } catch {
    throw new Error(`attest exited ${r.code} without a JSON document: ${r.stderr.slice(-3000)}`);
  }
}

let expected: Expected;
const dirs: string[] = [];
const runs: string[] = [];
beforeAll(() => {
  execFileSync("bash", [resolve("fixtures/build-pgbackrest.sh"), PGBR], {
    stdio: ["ignore", "ignore", "inherit"],
    timeout: 300_000,
  });
  expected = JSON.parse(readFileSync(join(PGBR, "expected.json"), "utf8")) as Expected;
});
afterAll(() => {
  for (const id of runs) {
    expect(localSandboxes(id), `sandboxes of run ${id}`).toEqual([]);
    const ps = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" });
    expect(
      ps.split("\n").filter((l) => l.includes(`attest-sandboxes/attest-${id}-`)),
      `processes of run ${id}`,
    ).toEqual([]);
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const source = (name: string, repo: string, extra = "") => `  - name: ${name}
    type: pgbackrest
    stanza: demo
    ${repo}
${extra}`;

describe("pgbackrest source", () => {
  it("lists the full and the incr backup as pgbackrest info describes them", async () => {
    const ws = workspace(
      (dir) => `sources:
${source("pgbr", `config_file: ${PGBR}/pgbackrest.conf`)}
history: { csv: ${dir}/history.csv }
reports: { dir: ${dir}/reports }
`,
    );
    dirs.push(ws.dir);
    const r = await attest(["list", "--config", ws.config, "--json"]);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      sources: Array<{ name: string; backups: Backup[]; findings: unknown[] }>;
    };
    const src = doc.sources.find((s) => s.name === "pgbr")!;
    expect(src.findings).toEqual([]);
    expect(src.backups.map((b) => [b.id, b.format])).toEqual([
      [expected.full, "pgbackrest-full"],
      [expected.incr, "pgbackrest-incr"],
    ]);
    for (const b of src.backups) {
      const e = expected.backups.find((x) => x.label === b.id)!;
      expect(b).toMatchObject({
        series: "demo",
        family: "physical",
        createdAt: e.stop,
        createdAtOrigin: "catalog",
        sizeBytes: e.repoSize,
        pgMajor: 15,
        location: join(PGBR, "repo", "backup", "demo", e.label),
        walRange: { timeline: 1, startWal: e.archiveStart, stopWal: e.archiveStop },
      });
      expect(b.labels).toMatchObject({
        dbSize: String(e.size),
        repoDelta: String(e.repoDelta),
        systemIdentifier: expected.system_identifier,
      });
    }
  });

  it("audits: latest restores with every marker, damaged repositories fail with pgbackrest's reason", async () => {
    // a copy of the repository only root can read: the sandbox user cannot restore from it
    const locked = mkdtempSync(join(tmpdir(), "attest-pgbr-locked-"));
    dirs.push(locked);
    cpSync(join(PGBR, "repo"), join(locked, "repo"), { recursive: true });
    chmodSync(join(locked, "repo"), 0o700);
    const markers = expected.latest.join(",");
    const ws = workspace(
      (dir) => `sandbox: { runtime: local }
policies: { rpo: 36500d }
sources:
${source(
  "pgbr",
  `config_file: ${PGBR}/pgbackrest.conf`,
  `    checks:
      queries:
        - { name: markers, database: postgres, sql: "select string_agg(label, ',' order by id) from markers", expect: "= ${markers}" }`,
)}
${source("damaged", `repo_path: ${PGBR}/damaged/repo`)}
${source("damaged-full", `repo_path: ${PGBR}/damaged/repo`, `    select: ${expected.full}`)}
${source("locked", `repo_path: ${locked}/repo`, "    verify: false")}
history: { csv: ${dir}/reports/history.csv }
reports: { dir: ${dir}/reports }
`,
    );
    dirs.push(ws.dir);
    const r = await attest(["audit", "--config", ws.config, "--json", "--no-mail"]);
    const doc = parseRun(r);
    runs.push(doc.run.id);
    expect(r.code, r.stderr.slice(-2000)).toBe(1);
    expect(doc.status).toBe("fail");
    const by = (name: string) => doc.drills.find((d) => d.source === name)!;

    const good = by("pgbr");
    expect(good.verdict, good.reason).toBe("pass");
    expect(good.backup).toMatchObject({ id: expected.incr, family: "physical", format: "pgbackrest-incr" });
    expect(good.target).toEqual({ kind: "latest" });
    expect(good.checks.find((c) => c.name === "query: markers")?.status).toBe("pass");
    expect(good.reached?.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(good.reached?.timeline).toBe(1);
    const last = expected.markers.at(-1)!.committedAt;
    expect(Date.parse(good.reached!.timestamp!)).toBeGreaterThanOrEqual(Date.parse(last));

    const damaged = by("damaged");
    expect(damaged.backup.id).toBe(expected.incr);
    expect(damaged.verdict).toBe("fail");
    expect(damaged.reason).toContain("pgbackrest restore");
    expect(damaged.reason).toContain("[055]");
    expect(damaged.reason).toContain(expected.damaged.removed_file);

    const full = by("damaged-full");
    expect(full.verdict).toBe("fail");
    expect(full.reason).toContain("the end of the archive was not reached");
    expect(full.reason).toContain(expected.damaged.removed_segment);

    const locked_ = by("locked");
    expect(locked_.verdict).toBe("error");
    expect(locked_.reason).toMatch(/not readable by the sandbox user/);

    const findings = doc.findings ?? [];
    expect(findings.filter((f) => f.source === "pgbr")).toEqual([]);
    const bad = findings.filter((f) => f.source === "damaged");
    expect(bad.find((f) => f.kind === "backup_invalid")?.message).toContain("pgbackrest verify checked");
    expect(bad.find((f) => f.kind === "wal_gap")?.severity).toBe("critical");
    expect(
      doc.violations.some(
        (v) => v.source === "damaged" && v.rule === "wal_continuity" && v.severity === "critical",
      ),
    ).toBe(true);
  });

  it("drills a point in time from the full backup with pgbackrest restore --type=time", async () => {
    const [m1, m2, m3] = expected.markers;
    const target = new Date((Date.parse(m2!.committedAt) + Date.parse(m3!.committedAt)) / 2).toISOString();
    const ws = workspace(
      (dir) => `sandbox: { runtime: local }
policies: { rpo: 36500d }
sources:
${source(
  "pgbr",
  `repo_path: ${PGBR}/repo`,
  `    verify: false
    checks:
      queries:
        - { name: markers, database: postgres, sql: "select string_agg(label, ',' order by id) from markers", expect: "= ${m1!.label},${m2!.label}" }`,
)}
history: { csv: ${dir}/reports/history.csv }
reports: { dir: ${dir}/reports }
`,
    );
    dirs.push(ws.dir);
    const r = await attest([
      "drill",
      "--config",
      ws.config,
      "--source",
      "pgbr",
      "--backup",
      expected.full,
      "--target-time",
      target,
      "--json",
      "--no-mail",
    ]);
    const doc = parseRun(r);
    runs.push(doc.run.id);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const d = doc.drills[0]!;
    expect(d.verdict, d.reason).toBe("pass");
    expect(d.backup.id).toBe(expected.full);
    expect(d.target).toEqual({ kind: "time", time: target });
    expect(Date.parse(d.reached!.timestamp!)).toBeLessThanOrEqual(Date.parse(target));
    expect(d.notes.join("\n")).toContain("promoted to timeline 2");
  });
});
