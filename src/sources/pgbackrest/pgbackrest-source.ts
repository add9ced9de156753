/** The `pgbackrest` source: the backups of one stanza, as `pgbackrest info` lists them. */
import type { Backup, DrillPlan, Finding } from "../../model.js";
import { describeError } from "../../util/errors.js";
import { lastLines, MINIMAL_ENV, ProcessError, runProcess } from "../../util/process.js";
import { planPhysical } from "../basebackup/pitr-plan.js";
import type { Source, SourceContext } from "../source.js";
import { backupSetPath, QUIET_ARGS, repoArgs, repoPathOf } from "./pgbackrest-args.js";
import type { PgbackrestSourceConfig } from "./pgbackrest-config.js";
import { parseInfo, type StanzaInfo } from "./pgbackrest-info.js";
import { verifyFindings } from "./pgbackrest-verify.js";
import { archivedSegments, findGaps } from "./pgbackrest-wal.js";

/** Replaceable parts, for tests. */
export interface PgbackrestSourceDeps {
  random?: () => number;
}

const INFO_TIMEOUT_MS = 60_000;

/** Lists a stanza's backups with `pgbackrest info` (run as this process's user: root or the repo's owner). */
export class PgbackrestSource implements Source {
  readonly type = "pgbackrest";
  readonly name: string;
  readonly #cfg: PgbackrestSourceConfig;
  readonly #random: () => number;
  #info: StanzaInfo | undefined;

  constructor(cfg: PgbackrestSourceConfig, deps: PgbackrestSourceDeps = {}) {
    this.#cfg = Object.freeze({ ...cfg });
    this.name = cfg.name;
    this.#random = deps.random ?? Math.random;
  }

  async #pgbackrest(command: string, extra: string[], timeoutMs: number, ctx: SourceContext) {
    return runProcess("pgbackrest", [...repoArgs(this.#cfg), ...QUIET_ARGS, ...extra, command], {
      timeoutMs,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      env: pgbackrestEnv(),
    });
  }

  async list(ctx: SourceContext): Promise<Backup[]> {
    const r = await this.#pgbackrest("info", ["--output=json"], INFO_TIMEOUT_MS, ctx).catch((err) => {
      throw new Error(`pgbackrest info --stanza=${this.#cfg.stanza} failed: ${describeError(err)}`, {
        cause: err,
      });
    });
    const repoPath = repoPathOf(this.#cfg);
    const stanza = this.#cfg.stanza;
    this.#info = parseInfo(r.stdout, {
      source: this.name,
      stanza,
      locate: (label) =>
        repoPath ? backupSetPath(repoPath, stanza, label) : `pgbackrest://${stanza}/${label}`,
    });
    return this.#info.backups;
  }

  async inspect(backups: readonly Backup[], ctx: SourceContext): Promise<Finding[]> {
    if (!this.#info) await this.list(ctx);
    const info = this.#info;
    const findings: Finding[] = [...(info?.findings ?? [])];
    const base = { source: this.name, series: this.#cfg.stanza };
    for (const b of backups) {
      if (b.labels.problem)
        findings.push({
          ...base,
          backupId: b.id,
          kind: "backup_error",
          severity: "critical",
          message: `${b.id}: ${b.labels.problem}`,
        });
    }
    const repoPath = repoPathOf(this.#cfg);
    if (repoPath && info) {
      // gaps only matter from the oldest backup's start on (expire removes older WAL on purpose)
      const oldestStart = backups
        .map((b) => b.walRange?.startWal)
        .filter((w): w is string => Boolean(w))
        .sort()[0];
      for (const a of info.archives) {
        try {
          for (const g of findGaps(a.id, archivedSegments(repoPath, this.#cfg.stanza, a.id), oldestStart)) {
            findings.push({
              ...base,
              kind: "wal_gap",
              severity: "critical",
              message: `WAL archive ${a.id} of stanza ${this.#cfg.stanza} has a gap: segments after ${g.after} are missing, it continues at ${g.resumesAt}; recovery cannot pass ${g.after}`,
            });
          }
        } catch (err) {
          ctx.logger.debug("could not list the repository's WAL archive", {
            source: this.name,
            error: describeError(err),
          });
        }
      }
    }
    if (this.#cfg.verify && backups.length > 0) findings.push(...(await this.#verify(ctx)));
    return findings;
  }

  async #verify(ctx: SourceContext): Promise<Finding[]> {
    const base = { source: this.name, series: this.#cfg.stanza };
    const limit = this.#cfg.verify_timeout_ms;
    try {
      const r = await this.#pgbackrest("verify", ["--output=text", "--verbose"], limit, ctx);
      const { findings, summary } = verifyFindings(r.stdout, { source: this.name, stanza: this.#cfg.stanza });
      ctx.logger.debug(summary, { source: this.name });
      return findings.map((f) => ({ ...f, message: `${f.message}; ${summary}` }));
    } catch (err) {
      const timedOut = err instanceof ProcessError && err.result?.timedOut === true;
      return [
        {
          ...base,
          kind: "verify_unavailable",
          severity: "warning",
          message: timedOut
            ? `pgbackrest verify did not finish within ${limit / 1000} s: backup files and WAL were not checked against their checksums`
            : `pgbackrest verify failed: ${lastLines(describeError(err), 2)}`,
        },
      ];
    }
  }

  plan(rule: string, backups: readonly Backup[], now: Date): DrillPlan[] | undefined {
    return planPhysical(rule, backups, now, this.#random);
  }
}

/** pgBackRest's own settings from the environment (PGBACKREST_*), and nothing else of Attest's. */
export function pgbackrestEnv(): Record<string, string> {
  const env: Record<string, string> = { PATH: MINIMAL_ENV.PATH!, LANG: "C.UTF-8" };
  for (const [k, v] of Object.entries(process.env))
    if (k.startsWith("PGBACKREST_") && v !== undefined) env[k] = v;
  return env;
}
