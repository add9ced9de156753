/** The `barman` source: one server of a Barman installation, read through the barman CLI. */
import type { Backup, Finding } from "../../model.js";
import type { Restorer } from "../../restore/restorer.js";
import { BarmanRestorer } from "../../restore/tool/barman-restorer.js";
import { describeError } from "../../util/errors.js";
import type { Source, SourceContext } from "../source.js";
import {
  type BarmanListEntry,
  type BarmanServerSettings,
  type BarmanShowBackup,
  backupRecord,
  missingWals,
} from "./barman-catalog.js";
import { type BarmanCliOptions, barmanJson, runBarman } from "./barman-cli.js";
import type { BarmanSourceConfig } from "./barman-config.js";

/** Lists a Barman server's DONE backups; other states and failing `barman check` lines are findings. */
export class BarmanSource implements Source {
  readonly type = "barman";
  readonly name: string;
  readonly #cfg: BarmanSourceConfig;
  readonly #cli: BarmanCliOptions;
  #findings: Finding[] = [];
  #server: BarmanServerSettings = {};

  constructor(cfg: BarmanSourceConfig) {
    this.#cfg = cfg;
    this.name = cfg.name;
    this.#cli = Object.freeze({ configFile: cfg.config_file, user: cfg.barman_user });
  }

  #finding(kind: string, severity: Finding["severity"], message: string, backupId?: string): Finding {
    return {
      source: this.name,
      series: this.#cfg.server,
      ...(backupId ? { backupId } : {}),
      kind,
      severity,
      message,
    };
  }

  restorer(_backup: Backup): Restorer {
    const { config_file, server, barman_user, superuser } = this.#cfg;
    return new BarmanRestorer({ configFile: config_file, server, barmanUser: barman_user, superuser });
  }

  async list(ctx: SourceContext): Promise<Backup[]> {
    this.#findings = [];
    const server = this.#cfg.server;
    const opts = ctx.signal ? { signal: ctx.signal } : {};
    const servers = await barmanJson<Record<string, BarmanServerSettings>>(
      this.#cli,
      ["show-servers", server],
      opts,
    );
    this.#server = servers[server] ?? {};
    const listed = await barmanJson<Record<string, BarmanListEntry[]>>(
      this.#cli,
      ["list-backups", server],
      opts,
    );
    const found: Backup[] = [];
    for (const entry of listed[server] ?? []) {
      if (ctx.signal?.aborted) break;
      if (entry.status !== "DONE") {
        this.#findings.push(
          this.#finding(
            entry.status === "FAILED" ? "backup_failed" : "backup_incomplete",
            entry.status === "FAILED" ? "critical" : "warning",
            `Barman backup ${entry.backup_id} of server ${server} is ${entry.status}${entry.status === "WAITING_FOR_WALS" ? " (the WAL it needs to be consistent has not been archived)" : ""}`,
            entry.backup_id,
          ),
        );
        continue;
      }
      const shown = await barmanJson<Record<string, BarmanShowBackup>>(
        this.#cli,
        ["show-backup", server, entry.backup_id],
        opts,
      );
      const show = shown[server];
      if (!show) {
        this.#findings.push(
          this.#finding(
            "backup_unreadable",
            "warning",
            `barman show-backup printed nothing for ${entry.backup_id}`,
            entry.backup_id,
          ),
        );
        continue;
      }
      found.push(backupRecord(this.#cfg, entry, show, this.#server));
    }
    return found.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async inspect(backups: readonly Backup[], ctx: SourceContext): Promise<Finding[]> {
    const findings = [...this.#findings];
    const opts = ctx.signal ? { signal: ctx.signal } : {};
    try {
      // plain output: one "\tName: OK|FAILED (hint)" line per check; exits 1 when any failed
      const r = await runBarman(this.#cli, ["check", this.#cfg.server], { ...opts, allowFailure: true });
      for (const line of r.stdout.split("\n")) {
        const m = /^\s+(.+?): FAILED(?: \((.*)\))?\s*$/.exec(line);
        if (!m) continue;
        const name = m[1]!;
        const archive = /^WAL archive$/i.test(name);
        findings.push(
          this.#finding(
            archive ? "wal_archive_missing" : "barman_check",
            archive ? "critical" : "warning",
            `barman check ${this.#cfg.server}: ${name}: FAILED${m[2] ? ` (${m[2]})` : ""}`,
          ),
        );
      }
    } catch (err) {
      findings.push(
        this.#finding("barman_check", "warning", `barman check could not run: ${describeError(err)}`),
      );
    }
    const walsDir = this.#server.wals_directory;
    if (walsDir) {
      const { missing } = missingWals(walsDir);
      for (const name of missing) {
        const needy = backups.filter(
          (b) =>
            b.walRange?.startWal &&
            b.walRange.stopWal &&
            name >= b.walRange.startWal &&
            name <= b.walRange.stopWal,
        );
        findings.push(
          needy.length
            ? this.#finding(
                "wal_missing_for_backup",
                "critical",
                `WAL segment ${name} is in Barman's xlog.db but missing from ${walsDir}; backup ${needy.map((b) => b.id).join(", ")} cannot reach consistency without it`,
                needy[0]!.id,
              )
            : this.#finding(
                "wal_gap",
                "critical",
                `WAL segment ${name} is in Barman's xlog.db but missing from ${walsDir}: recovery cannot replay past it`,
              ),
        );
      }
    }
    return findings;
  }
}
