/** A realistic run, history and config for the report, mail and alert tests. */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SourceInventory } from "../src/audit/inventory.js";
import { policiesFor } from "../src/audit/inventory.js";
import { parseConfig } from "../src/config/load.js";
import type { Config } from "../src/config/schema.js";
import { recordsOfRun } from "../src/history/history-record.js";
import { HistoryStore } from "../src/history/history-store.js";
import type { Backup, DrillResult, Inventory, RunResult } from "../src/model.js";
import { evaluatePolicies } from "../src/policy/evaluate.js";
import { createSource } from "../src/sources/registry.js";
import { DAY, daily, drill, HOUR } from "./report-fixtures.js";

/** A temporary folder with a backup dir, a reports dir and a config written from extra YAML. */
export function sampleWorkspace(
  extraYaml = "",
  env: NodeJS.ProcessEnv = {},
  opts: { pdf?: boolean } = {},
): { dir: string; config: Config; file: string } {
  const dir = mkdtempSync(join(tmpdir(), "attest-report-"));
  mkdirSync(join(dir, "backup", "app"), { recursive: true });
  mkdirSync(join(dir, "backup", "crm"), { recursive: true });
  const file = join(dir, "attest.yml");
  const yaml = `organization: { name: ACME Corp, department: Infrastructure & Data }
policies:
  rpo: 26h
  rto: 30m
  verify_every: 7d
  retention: { min_count: 7, min_days: 7, max_days: 35 }
sources:
  - name: app-dumps
    type: dump-dir
    path: ./backup/app
  - name: crm-dumps
    type: dump-dir
    path: ./backup/crm
    policies: { rpo: 48h }
history: { csv: ./reports/history.csv }
reports: { dir: ./reports, pdf: ${opts.pdf ?? true} }
${extraYaml}`;
  writeFileSync(file, yaml);
  return { dir, file, config: parseConfig(yaml, file, env) };
}

const mib = 1024 * 1024;

/** An inventory as the inventory check records it. */
export function sampleInventory(): Inventory {
  return {
    databases: [
      {
        name: "app",
        schemas: ["public", "billing"],
        tables: Array.from({ length: 32 }, (_, i) => ({
          name: `public.table_${String(i).padStart(2, "0")}`,
          rows: (i + 1) * 1234,
        })),
        indexes: 41,
        sequences: 12,
        views: 3,
        extensions: ["plpgsql", "pgcrypto"],
      },
    ],
    roles: ["app_owner", "app_reader", "postgres"],
  };
}

/** Backups of both sources, drills of this run, past history; writes history and evidence. */
export function sampleRun(config: Config, now: Date, opts: { failCrm?: boolean; runId?: string } = {}) {
  const app: Backup[] = daily("app-dumps", "app", 40, 3 * HOUR, (i) => (400 + 8 * i) * mib, now);
  const billing: Backup[] = daily("app-dumps", "billing", 5, 30 * HOUR, () => 50 * mib, now);
  const crm: Backup[] = daily("crm-dumps", "crm", 9, 5 * HOUR, (i) => (i === 8 ? 30 * mib : 120 * mib), now);
  const store = new HistoryStore(config.history.csv);
  // eight weekly past audits of app, with slowly growing restore times
  for (let k = 8; k >= 1; k--) {
    const at = new Date(now.getTime() - k * 7 * DAY);
    const b = app.find((x) => Date.parse(x.createdAt) < at.getTime()) ?? app[0]!;
    const past: RunResult = {
      run: { id: `past-${k}`, kind: "audit", startedAt: at.toISOString(), finishedAt: at.toISOString() },
      status: "pass",
      drills: [drill(b, k === 5 ? "error" : "pass", (14 + (8 - k) * 1.5) * 60_000)],
      violations: [],
    };
    store.append(recordsOfRun(past, at.toISOString()));
  }
  const inv = sampleInventory();
  const runId = opts.runId ?? "20250310t120000z-abcd";
  mkdirSync(join(config.reports.dir, "evidence", runId), { recursive: true });
  const evidence = join("evidence", runId, "1-app-dumps-app.json");
  writeFileSync(
    join(config.reports.dir, evidence),
    JSON.stringify({
      runId,
      source: "app-dumps",
      series: "app",
      backupId: app.at(-1)!.id,
      inventory: inv,
      checks: [],
      notes: [],
    }),
  );
  const drills: DrillResult[] = [
    drill(app.at(-1)!, "pass", 27 * 60_000, {
      evidence,
      measuredRpoSeconds: 3 * 3600 + 120,
      newestData: new Date(now.getTime() - 3 * HOUR - 120_000).toISOString(),
      sandboxMajor: 15,
      checks: [
        { name: "server_up", status: "pass", detail: "accepting connections", durationMs: 800 },
        {
          name: "amcheck",
          status: "pass",
          detail: "heap and btree of 73 relations: no corruption",
          durationMs: 41_000,
        },
        { name: "full_read", status: "pass", detail: "read 32 tables, 651,508 rows", durationMs: 12_000 },
        {
          name: "inventory",
          status: "warn",
          detail:
            "table public.table_07 lost 12% of its rows against the previous passing drill (9,872 -> 8,687)",
          durationMs: 900,
        },
        {
          name: "orders exist",
          status: "pass",
          detail: "select count(*) from orders = 1204 (expected > 0)",
          durationMs: 20,
        },
        { name: "write", status: "pass", detail: "the restored copy accepted a write", durationMs: 30 },
      ],
    }),
    drill(crm.at(-1)!, opts.failCrm === false ? "pass" : "fail", 95_000),
  ];
  const inventories: SourceInventory[] = config.sources.map((sc) => ({
    config: sc,
    source: createSource(sc),
    backups: sc.name === "app-dumps" ? [...app, ...billing] : crm,
    findings: [],
  }));
  const violations = evaluatePolicies({
    now,
    sources: inventories.map((i) => ({
      config: i.config,
      policies: policiesFor(config, i.config),
      backups: i.backups,
      findings: i.findings,
    })),
    drills,
    history: store.read(),
  });
  const statusOf = (): RunResult["status"] =>
    drills.some((d) => d.verdict === "fail") || violations.some((v) => v.severity === "critical")
      ? "fail"
      : violations.length
        ? "warn"
        : "pass";
  const run: RunResult = {
    run: {
      id: runId,
      kind: "audit",
      startedAt: new Date(now.getTime() - 30 * 60_000).toISOString(),
      finishedAt: now.toISOString(),
    },
    status: statusOf(),
    drills,
    violations,
  };
  const head = store.append(recordsOfRun(run, run.run.finishedAt));
  return { run, head, inventories, store };
}
