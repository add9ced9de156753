/** The `pgbackrest` source: the backups of one stanza, as `pgbackrest info` lists them. */
import { posix } from "node:path";
import type { Backup, DrillPlan, Finding } from "../../model.js";
import type { Restorer } from "../../restore/restorer.js";
import { PgbackrestRestorer } from "../../restore/tool/pgbackrest-restorer.js";
import { describeError, VerifierError } from "../../util/errors.js";
import { lastLines, ProcessError } from "../../util/process.js";
import { planPhysical } from "../basebackup/pitr-plan.js";
import type { Source, SourceContext } from "../source.js";
import {
  backupSetPath,
  registerRepoSecrets,
  repoOption,
  repoPathOf,
  repoStoreOf,
} from "./pgbackrest-args.js";
import type { PgbackrestSourceConfig } from "./pgbackrest-config.js";
import { runPgbackrestConfined } from "./pgbackrest-confined.js";
import { parseInfo, type StanzaInfo, storeAccessProblem } from "./pgbackrest-info.js";
import { verifyFindings } from "./pgbackrest-verify.js";
import { archivedSegmentsOf, findGaps } from "./pgbackrest-wal.js";

/** Replaceable parts, for tests. */
export interface PgbackrestSourceDeps {
  random?: () => number;
}

const INFO_TIMEOUT_MS = 60_000;

/** Lists a stanza's backups with `pgbackrest info`, confined (posix or S3 repositories). */
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
    // before any pgbackrest output can carry them (S3-9)
    registerRepoSecrets(cfg);
  }

  async #pgbackrest(
    command: string,
    extra: string[],
    timeoutMs: number,
    ctx: SourceContext,
    operands: string[] = [],
  ) {
    return runPgbackrestConfined(this.#cfg, [...extra, command, ...operands], {
      timeoutMs,
      signal: ctx.signal,
    });
  }

  restorer(_backup: Backup): Restorer {
    const { stanza, repo_path, config_file, repo, superuser } = this.#cfg;
    return new PgbackrestRestorer({ stanza, repo_path, config_file, repo, superuser });
  }

  async list(ctx: SourceContext): Promise<Backup[]> {
    const r = await this.#pgbackrest("info", ["--output=json"], INFO_TIMEOUT_MS, ctx).catch((err) => {
      throw new Error(`pgbackrest info --stanza=${this.#cfg.stanza} failed: ${describeError(err)}`, {
        cause: err,
      });
    });
    const stanza = this.#cfg.stanza;
    // the verifier's keys, endpoint or TLS: Attest could not look (error), not a failed backup
    const access = storeAccessProblem(r.stdout, stanza);
    if (access)
      throw new VerifierError(`pgbackrest info --stanza=${stanza} could not read the repository: ${access}`);
    const repoPath = repoPathOf(this.#cfg);
    const bucket = repoStoreOf(this.#cfg) ? repoOption(this.#cfg, "s3-bucket") : undefined;
    const prefix = repoOption(this.#cfg, "path") ?? "/var/lib/pgbackrest";
    this.#info = parseInfo(r.stdout, {
      source: this.name,
      stanza,
      locate: (label) =>
        repoPath
          ? backupSetPath(repoPath, stanza, label)
          : bucket
            ? `s3://${bucket}${posix.join("/", prefix, "backup", stanza, label)}`
            : `pgbackrest://${stanza}/${label}`,
    });
    return this.#info.backups;
  }

  async inspect(backups: readonly Backup[], ctx: SourceContext): Promise<Finding[]> {
    if (!this.#info) await this.list(ctx);
    const info = this.#info;
    const findings: Finding[] = [...(info?.findings ?? [])];
    const base = { source: this.name, series: this.#cfg.stanza };
    for (const b of backups) {
      if (b.problem)
        findings.push({
          ...base,
          backupId: b.id,
          kind: "backup_error",
          severity: "critical",
          message: `${b.id}: ${b.problem}`,
        });
    }
    if (info && info.archives.length > 0) {
      // gaps only matter from the oldest backup's start on (expire removes older WAL on purpose)
      const oldestStart = backups
        .map((b) => b.walRange?.startWal)
        .filter((w): w is string => Boolean(w))
        .sort()[0];
      try {
        // repo-ls reads a posix repository and an object store alike
        const r = await this.#pgbackrest("repo-ls", ["--recurse", "--output=json"], INFO_TIMEOUT_MS, ctx, [
          `archive/${this.#cfg.stanza}`,
        ]);
        const listed = archivedSegmentsOf(r.stdout);
        for (const a of info.archives) {
          for (const g of findGaps(a.id, listed.get(a.id) ?? [], oldestStart)) {
            findings.push({
              ...base,
              kind: "wal_gap",
              severity: "critical",
              message: `WAL archive ${a.id} of stanza ${this.#cfg.stanza} has a gap: segments after ${g.after} are missing, it continues at ${g.resumesAt}; recovery cannot pass ${g.after}`,
            });
          }
        }
      } catch (err) {
        findings.push({
          ...base,
          kind: "wal_listing_unavailable",
          severity: "warning",
          message: `the WAL archive of stanza ${this.#cfg.stanza} could not be listed (pgbackrest repo-ls), so gaps between archive min and max were not looked for: ${lastLines(describeError(err), 2)}`,
        });
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
