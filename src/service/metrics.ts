/**
 * Prometheus metrics of `attest serve`, named after pgbackrest_exporter and the Barman
 * exporter. Filled from history rows: the CSV at start (a restart keeps the values) and the
 * rows of each new run (the same function, so both paths agree).
 */
import { statSync } from "node:fs";
import { Counter, Gauge, Registry } from "prom-client";
import type { HistoryRecord } from "../history/history-record.js";
import { recordsOfRun } from "../history/history-record.js";
import { HistoryStore } from "../history/history-store.js";
import { type RunResult, VERDICTS, type Verdict } from "../model.js";
import { isAbortedDrill } from "../policy/drill-outcome.js";

const PHASES = [
  ["provision", "provisionMs"],
  ["restore", "restoreMs"],
  ["recovery", "recoveryMs"],
  ["checks", "checksMs"],
  ["teardown", "teardownMs"],
  ["total", "totalMs"],
] as const;

interface SeriesState {
  lastBackupAt?: number;
  lastSuccessAt?: number;
}

/** Verifies the history chain, again only when the file changed (a scrape must stay cheap). */
function chainChecker(file: () => string | undefined): () => boolean | undefined {
  let seen = "";
  let ok: boolean | undefined;
  return () => {
    const path = file();
    if (!path) return undefined;
    let stamp: string;
    try {
      const st = statSync(path);
      stamp = `${path}\0${st.size}\0${st.mtimeMs}`;
    } catch {
      // no history yet: an empty chain verifies
      return true;
    }
    if (stamp !== seen) {
      ok = new HistoryStore(path).verify().ok;
      seen = stamp;
    }
    return ok;
  };
}

const seconds = (iso: string) => Date.parse(iso) / 1000;

/** The service's own registry and the gauges it keeps. */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly #series = new Map<string, SeriesState>();
  readonly #now: () => number;
  readonly #sinceBackup: Gauge<"source" | "series">;
  readonly #lastBackup: Gauge<"source" | "series">;
  readonly #lastSuccess: Gauge<"source" | "series">;
  readonly #status: Gauge<"source" | "series">;
  readonly #lastDrill: Gauge<"source" | "series">;
  readonly #lastVerdict: Gauge<"source" | "series" | "verdict">;
  readonly #duration: Gauge<"source" | "series" | "phase">;
  readonly #rpo: Gauge<"source" | "series">;
  readonly #violation: Gauge<"source" | "rule" | "severity">;
  readonly #nextRun: Gauge<"plan">;
  readonly #runs: Counter<"kind" | "status">;
  /** Violation label sets per source, so a source's set is replaced as a whole. */
  readonly #violationKeys = new Map<string, Array<{ rule: string; severity: string }>>();

  constructor(
    opts: {
      now?: () => number;
      nextRuns?: () => ReadonlyMap<string, Date | undefined>;
      /** The history CSV whose hash chain `attest_history_chain_ok` reports. */
      historyFile?: () => string | undefined;
    } = {},
  ) {
    this.#now = opts.now ?? Date.now;
    const registers = [this.registry];
    const series = ["source", "series"] as const;
    this.#sinceBackup = new Gauge({
      name: "attest_backup_since_last_completion_seconds",
      help: "Seconds since the newest backup of the series was taken (as of its consistency time)",
      labelNames: series,
      registers,
      collect: () => {
        this.#sinceBackup.reset();
        for (const [key, s] of this.#series) {
          if (s.lastBackupAt === undefined) continue;
          const [source, name] = key.split("\0") as [string, string];
          this.#sinceBackup.set({ source, series: name }, Math.max(0, this.#now() / 1000 - s.lastBackupAt));
        }
      },
    });
    this.#lastBackup = new Gauge({
      name: "attest_backup_last_timestamp_seconds",
      help: "Consistency time of the newest backup of the series that Attest has seen, Unix seconds",
      labelNames: series,
      registers,
    });
    this.#lastSuccess = new Gauge({
      name: "attest_verification_last_success_timestamp_seconds",
      help: "When a drill of the series last passed (pass or warn), Unix seconds",
      labelNames: series,
      registers,
    });
    this.#status = new Gauge({
      name: "attest_verification_status",
      help: "Verdict of the series' last drill: 1 pass or warn (restorable), 0 fail or error (alert on 0); drills aborted by a signal are passed over",
      labelNames: series,
      registers,
    });
    this.#lastDrill = new Gauge({
      name: "attest_drill_last_timestamp_seconds",
      help: "When the series' last drill that reached a verdict was recorded, Unix seconds",
      labelNames: series,
      registers,
    });
    this.#lastVerdict = new Gauge({
      name: "attest_drill_last_verdict",
      help: "Verdict of the series' last drill: 1 on the series' current verdict (pass, warn, fail, error), 0 on the others",
      labelNames: ["source", "series", "verdict"],
      registers,
    });
    new Gauge({
      name: "attest_verification_since_last_success_seconds",
      help: "Seconds since a drill of the series last passed (pass or warn); absent for a series never verified",
      labelNames: series,
      registers,
      collect: () => {
        const g = this.registry.getSingleMetric("attest_verification_since_last_success_seconds") as Gauge<
          "source" | "series"
        >;
        g.reset();
        for (const [key, s] of this.#series) {
          if (s.lastSuccessAt === undefined) continue;
          const [source, name] = key.split("\0") as [string, string];
          g.set({ source, series: name }, Math.max(0, this.#now() / 1000 - s.lastSuccessAt));
        }
      },
    });
    const chainOk = chainChecker(opts.historyFile ?? (() => undefined));
    new Gauge({
      name: "attest_history_chain_ok",
      help: "1 while the history CSV's hash chain verifies, 0 when a row was removed, inserted or edited (alert on 0)",
      registers,
      collect() {
        const ok = chainOk();
        if (ok === undefined) return;
        this.set(ok ? 1 : 0);
      },
    });
    this.#duration = new Gauge({
      name: "attest_restore_duration_seconds",
      help: "Phase durations of the series' last drill (provision, restore, recovery, checks, teardown, total)",
      labelNames: ["source", "series", "phase"],
      registers,
    });
    this.#rpo = new Gauge({
      name: "attest_rpo_measured_seconds",
      help: "Newest restored data vs drill start in the series' last drill with a freshness check",
      labelNames: series,
      registers,
    });
    this.#violation = new Gauge({
      name: "attest_policy_violation",
      help: "Policy violations of the source's last evaluation, by rule and severity",
      labelNames: ["source", "rule", "severity"],
      registers,
    });
    const nextRuns = opts.nextRuns;
    this.#nextRun = new Gauge({
      name: "attest_scheduler_next_run_timestamp_seconds",
      help: "Next fire time of each scheduled plan, Unix seconds",
      labelNames: ["plan"],
      registers,
      collect: () => {
        if (!nextRuns) return;
        this.#nextRun.reset();
        for (const [plan, at] of nextRuns()) if (at) this.#nextRun.set({ plan }, at.getTime() / 1000);
      },
    });
    new Gauge({
      name: "attest_up",
      help: "1 while the Attest service runs",
      registers,
      collect() {
        this.set(1);
      },
    });
    this.#runs = new Counter({
      name: "attest_runs_total",
      help: "Runs started by this service process, by kind and final status",
      labelNames: ["kind", "status"],
      registers,
    });
  }

  /**
   * Applies history rows in file order: drill rows per series; each run's violation rows
   * replace those of the sources the run touched.
   */
  observeRecords(rows: readonly HistoryRecord[]): void {
    const byRun = new Map<string, HistoryRecord[]>();
    for (const r of rows) {
      const list = byRun.get(r.runId) ?? [];
      list.push(r);
      byRun.set(r.runId, list);
    }
    for (const runRows of byRun.values()) this.#observeRun(runRows, []);
  }

  /** Applies a finished run's document; `evaluated` sources lose violations the run no longer found. */
  observeRun(run: RunResult, evaluated: readonly string[] = []): void {
    this.#observeRun(recordsOfRun(run, run.run.finishedAt), evaluated);
  }

  /** Counts a scheduled run by its final status (`skipped` when it could not start). */
  countRun(kind: string, status: string): void {
    this.#runs.inc({ kind, status });
  }

  /** Metrics text in the Prometheus exposition format. */
  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  #observeRun(rows: readonly HistoryRecord[], evaluated: readonly string[]): void {
    const touched = new Set<string>(evaluated);
    for (const r of rows) {
      touched.add(r.source);
      if (r.recordType === "drill") this.#observeDrill(r);
    }
    const violations = rows.filter((r) => r.recordType === "violation");
    for (const v of violations) touched.add(v.source);
    // a source evaluated in this run gets exactly this run's violations
    for (const source of touched) {
      for (const k of this.#violationKeys.get(source) ?? []) this.#violation.remove({ source, ...k });
      this.#violationKeys.set(source, []);
    }
    const counts = new Map<string, number>();
    for (const v of violations) {
      const key = `${v.source}\0${v.rule}\0${v.severity}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    for (const [key, n] of counts) {
      const [source, rule, severity] = key.split("\0") as [string, string, string];
      this.#violation.set({ source, rule, severity }, n);
      this.#violationKeys.get(source)!.push({ rule, severity });
    }
  }

  #observeDrill(r: HistoryRecord): void {
    const labels = { source: r.source, series: r.series };
    const key = `${r.source}\0${r.series}`;
    const s = this.#series.get(key) ?? {};
    this.#series.set(key, s);
    const created = r.backupCreatedAt ? seconds(r.backupCreatedAt) : Number.NaN;
    if (Number.isFinite(created) && (s.lastBackupAt === undefined || created > s.lastBackupAt)) {
      s.lastBackupAt = created;
      this.#lastBackup.set(labels, created);
    }
    // an abort by a signal or shutdown says nothing about the backup: the drill before it stands
    if (isAbortedDrill({ verdict: r.verdict as Verdict, reason: r.reason })) return;
    const ok = r.verdict === "pass" || r.verdict === "warn";
    this.#status.set(labels, ok ? 1 : 0);
    if (r.recordedAt) this.#lastDrill.set(labels, seconds(r.recordedAt));
    for (const v of VERDICTS) this.#lastVerdict.set({ ...labels, verdict: v }, v === r.verdict ? 1 : 0);
    if (ok && r.recordedAt) {
      s.lastSuccessAt = seconds(r.recordedAt);
      this.#lastSuccess.set(labels, s.lastSuccessAt);
    }
    for (const [phase, column] of PHASES) {
      const ms = Number(r[column]);
      if (r[column] !== "" && Number.isFinite(ms)) this.#duration.set({ ...labels, phase }, ms / 1000);
    }
    if (r.measuredRpoSeconds !== "" && Number.isFinite(Number(r.measuredRpoSeconds)))
      this.#rpo.set(labels, Number(r.measuredRpoSeconds));
  }
}
