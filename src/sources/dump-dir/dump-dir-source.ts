/** The `dump-dir` source: a directory of pg_dump output, grouped into series by database. */
import { readdirSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import picomatch from "picomatch";
import { type Backup, detailOf, type Finding } from "../../model.js";
import { archiveContent } from "../../restore/logical/archive-completeness.js";
import { GzippedArchiveRestorer } from "../../restore/logical/gzipped-archive-restorer.js";
import { LogicalRestorer } from "../../restore/logical/logical-restorer.js";
import { StoredDumpRestorer } from "../../restore/logical/stored-dump-restorer.js";
import type { Restorer } from "../../restore/restorer.js";
import type { Source, SourceContext } from "../source.js";
import { type Detected, detectFormat, isDirectoryDump } from "./detect-format.js";
import type { DumpDirSourceConfig } from "./dump-dir-config.js";
import { dumpFacts } from "./dump-facts.js";
import { pairDumps, unpairedFindings } from "./dump-pairs.js";
import { settleSeriesNames } from "./series-names.js";
import { listStoredDumps } from "./storage-listing.js";

/** Extensions a dump file has when `include` is not configured. */
export const DEFAULT_INCLUDE = [
  "**/*.dump",
  "**/*.dump.gz",
  "**/*.custom",
  "**/*.backup",
  "**/*.pgdump",
  "**/*.sql",
  "**/*.sql.gz",
  "**/*.sql.bz2",
  "**/*.sql.xz",
  "**/*.sql.zst",
  "**/*.sql.lz4",
  "**/*.tar",
];

/** Lists dumps in a directory tree. */
export class DumpDirSource implements Source {
  readonly type = "dump-dir";
  readonly name: string;
  readonly #cfg: DumpDirSourceConfig;
  readonly #include: (p: string) => boolean;
  readonly #exclude: (p: string) => boolean;
  /** Whether `include` was configured (then it applies to directory dumps too). */
  readonly #explicitInclude: boolean;
  #findings: Finding[] = [];

  constructor(cfg: DumpDirSourceConfig) {
    this.#cfg = cfg;
    this.name = cfg.name;
    this.#explicitInclude = cfg.include !== undefined;
    const include = cfg.include ?? DEFAULT_INCLUDE;
    this.#include = picomatch(include, { dot: false });
    this.#exclude = cfg.exclude.length ? picomatch(cfg.exclude) : () => false;
  }

  restorer(backup: Backup): Restorer {
    const cfg = this.#cfg;
    const logical = new LogicalRestorer({
      jobs: cfg.jobs,
      globals: cfg.globals,
      maxLineBytes: cfg.max_line,
      maxPlainBytes: cfg.max_decompressed,
    });
    const restorer = backup.format === "custom-gzip" ? new GzippedArchiveRestorer(logical) : logical;
    // a dump in a store is fetched into the sandbox first, then restored the same way
    return backup.stored && cfg.storage ? new StoredDumpRestorer(cfg.storage, restorer) : restorer;
  }

  async list(ctx: SourceContext): Promise<Backup[]> {
    const found: Backup[] = [];
    this.#findings = [];
    if (this.#cfg.storage) {
      const filter = { include: this.#include, exclude: this.#exclude };
      found.push(...(await listStoredDumps(this.#cfg, filter, ctx, this.#findings)));
      settleSeriesNames(found);
      return found.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    }
    const walk = async (dir: string, depth: number) => {
      for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
        a.name.localeCompare(b.name),
      )) {
        if (ctx.signal?.aborted) return;
        const abs = join(dir, e.name);
        const rel = relative(this.#cfg.path, abs).split(sep).join("/");
        if (this.#exclude(rel)) continue;
        if (this.#cfg.globals && abs === this.#cfg.globals) continue;
        if (e.isDirectory()) {
          if (isDirectoryDump(abs)) {
            if (!this.#explicitInclude || this.#include(rel)) found.push(await this.#backup(abs, rel, ctx));
          } else if (this.#cfg.recursive && depth < 6) await walk(abs, depth + 1);
          continue;
        }
        if (!e.isFile() || !this.#include(rel)) continue;
        const b = await this.#backup(abs, rel, ctx);
        // a full pg_dumpall file is a backup of the whole cluster; --globals-only output is not
        const dump = detailOf(b, "dump");
        if (dump?.scope === "cluster" && !dump.clusterDatabases) {
          ctx.logger.debug("skipping pg_dumpall --globals-only output (configure it as `globals`)", {
            source: this.name,
            file: rel,
          });
          continue;
        }
        found.push(b);
      }
    };
    await walk(this.#cfg.path, 0);
    settleSeriesNames(found);
    // a schema dump paired with a data dump is part of that backup, not one of its own
    const listed = pairDumps(found, this.#cfg.pairs);
    this.#findings.push(...unpairedFindings(listed));
    return listed.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async inspect(): Promise<Finding[]> {
    return this.#findings;
  }

  async #backup(abs: string, rel: string, ctx: SourceContext): Promise<Backup> {
    let d: Detected;
    try {
      d = await detectFormat(abs);
    } catch (err) {
      d = { format: "unknown", problem: `cannot read: ${(err as Error).message}`, sizeBytes: 0 };
    }
    const name = rel.split("/").pop() ?? rel;
    const facts = dumpFacts(d, rel, name === "toc.dat" ? rel : name, () => statSync(abs).mtime);
    // --schema-only / --data-only, from the TOC (a full dump says nothing)
    const content = d.archive ? archiveContent(abs, d.format) : undefined;
    if (content && content !== "full") facts.detail.content = content;
    if (d.problem) {
      this.#findings.push({
        source: this.name,
        series: facts.series,
        backupId: rel,
        kind: "unreadable",
        severity: "critical",
        message: `${rel}: ${d.problem}`,
      });
      ctx.logger.debug("unrecognised file in dump directory", {
        source: this.name,
        file: rel,
        problem: d.problem,
      });
    }
    return { source: this.name, id: rel, ...facts, sizeBytes: d.sizeBytes, location: abs };
  }
}
