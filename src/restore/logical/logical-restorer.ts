/** Restores pg_dump output: pg_restore for archives, psql (guarded) for plain SQL. */
import { randomBytes } from "node:crypto";
import { type Backup, type DrillPlan, detailOf } from "../../model.js";
import type { Sandbox } from "../../runtimes/runtime.js";
import { quoteIdent, quoteLiteral, withClient } from "../../runtimes/sql.js";
import { needsSchema, needsSchemaReason, pairedSchema } from "../../sources/dump-dir/dump-pairs.js";
import { seriesNote } from "../../sources/dump-dir/series-names.js";
import { formatBytes } from "../../util/duration.js";
import { BackupDefectError, coerceError, VerifierError } from "../../util/errors.js";
import { lastLines, ProcessError } from "../../util/process.js";
import type { RestoreContext, RestoreOutcome, Restorer } from "../restorer.js";
import { archiveDataProblem, firstProblem } from "./archive-completeness.js";
import { restoreArchive } from "./archive-restore.js";
import { archiveRoles } from "./archive-roles.js";
import { readTocTablespaces, tocProblem } from "./archive-toc.js";
import {
  type ClusterSection,
  forgivenErrors,
  PsqlErrorJudge,
  readClusterSection,
  sectionForPsql,
  skipBytes,
} from "./cluster-globals.js";
import { pairPreflight, restorePair } from "./dump-pair-restore.js";
import { createGuardStream, scanProblem } from "./guard-stream.js";
import { openPlain, type PlainReadOptions, plainCompression, prescanPlain } from "./plain-source.js";
import { SqlScanner } from "./sql-scanner.js";

/** Options of the logical restorer. */
export interface LogicalRestorerOptions {
  jobs: number;
  /** A pg_dumpall --globals-only file restored first. */
  globals?: string;
  /** The longest line a plain dump may have outside COPY data (bytes). */
  maxLineBytes?: number;
  /** The largest decompressed plain dump read (bytes). */
  maxPlainBytes?: number;
}

const ARCHIVE_FORMATS = new Set(["custom", "directory", "tar"]);

/** The logical restorer. */
export class LogicalRestorer implements Restorer {
  readonly name = "logical";
  readonly sandboxMode = "init" as const;
  readonly #opts: LogicalRestorerOptions;
  #scan: SqlScanner | undefined;
  /** The scan of a plain schema dump paired with the plain data dump under test. */
  #schemaScan: SqlScanner | undefined;
  /** The roles section of a pg_dumpall file being restored. */
  #section: ClusterSection | undefined;
  /** Whether the sandbox's psql has a restricted mode (asked once per restore). */
  #restrict: Promise<boolean> | undefined;

  constructor(opts: LogicalRestorerOptions) {
    this.#opts = opts;
  }

  #readOptions(): PlainReadOptions {
    return {
      ...(this.#opts.maxLineBytes ? { maxLineBytes: this.#opts.maxLineBytes } : {}),
      ...(this.#opts.maxPlainBytes ? { maxBytes: this.#opts.maxPlainBytes } : {}),
    };
  }

  /** Host paths the sandbox must read. */
  inputs(plan: DrillPlan): string[] {
    const schema = pairedSchema(plan.backup);
    return [
      ...(schema ? [schema.location] : []),
      plan.backup.location,
      ...(this.#opts.globals ? [this.#opts.globals] : []),
    ];
  }

  async preflight(plan: DrillPlan, signal?: AbortSignal): Promise<void> {
    const b = plan.backup;
    if (b.format === "unknown") throw new BackupDefectError(`${b.id}: ${b.problem ?? "not a pg_dump file"}`);
    if (needsSchema(b)) throw new VerifierError(needsSchemaReason(b));
    const pairProblem = pairPreflight(b);
    if (pairProblem) throw pairProblem;
    const compression = plainCompression(b.format);
    this.#scan = compression
      ? await prescanPlain(b.location, compression, {
          ...this.#readOptions(),
          ...(signal ? { signal } : {}),
        })
      : undefined;
    const problem = this.#scan && scanProblem(this.#scan, b.id, true);
    if (problem) throw problem;
    // a plain --data-only dump fills tables it does not create: alone, it cannot be verified
    if (this.#scan?.dataOnly && !pairedSchema(b)) throw new VerifierError(needsSchemaReason(b));
    // a plain schema dump paired with this one is scanned by the same rules
    const schemaPart = pairedSchema(b);
    const schemaCompression = schemaPart && plainCompression(schemaPart.format);
    this.#schemaScan =
      schemaPart && schemaCompression
        ? await prescanPlain(schemaPart.location, schemaCompression, {
            ...this.#readOptions(),
            ...(signal ? { signal } : {}),
          })
        : undefined;
    const schemaProblem =
      schemaPart && this.#schemaScan && scanProblem(this.#schemaScan, schemaPart.id, true);
    if (schemaProblem) throw schemaProblem;
    // an archive's copy statements never appear in pg_restore --schema-only: read them from its TOC
    const toc = ARCHIVE_FORMATS.has(b.format) ? tocProblem(b.location, b.format, b.id) : undefined;
    if (toc) throw toc;
    // every data entry's data must be in the archive: pg_restore misses some cuts
    const data = ARCHIVE_FORMATS.has(b.format) ? archiveDataProblem(b.location, b.format, b.id) : undefined;
    if (data) throw data;
  }

  async restore(sandbox: Sandbox, ctx: RestoreContext): Promise<RestoreOutcome> {
    const b = ctx.plan.backup;
    if (this.#scan === undefined) await this.preflight(ctx.plan, ctx.signal);
    const scan = this.#scan;
    const notes: string[] = [];
    // whether this psql has a restricted mode: asked while the database and roles are made
    this.#restrict = scan ? settledLater(supportsRestrict(sandbox)) : undefined;

    // before the globals: their CREATE TABLESPACE names host paths, which the sandbox never sees
    const tablespaces = scan
      ? scan.tablespaces
      : ARCHIVE_FORMATS.has(b.format)
        ? tocTablespaces(pairedSchema(b) ?? b)
        : new Set<string>();
    // a full pg_dumpall file carries the cluster's roles (it creates them itself) and tablespaces,
    // which its roles section would make at host paths: made inside the sandbox first instead
    const dump = detailOf(b, "dump");
    const cluster = dump?.scope === "cluster";
    this.#section = cluster ? await this.#clusterSection(b, ctx) : undefined;
    const own = this.#section?.tablespaces ?? [];
    const schemaSpaces = this.#schemaScan?.tablespaces ?? [];
    await this.#createTablespaces(sandbox, new Set([...tablespaces, ...own, ...schemaSpaces]), notes);
    if (this.#opts.globals && cluster)
      notes.push("the globals file was not restored: the pg_dumpall file carries the cluster's own roles");
    else if (this.#opts.globals) await this.#restoreGlobals(sandbox, ctx, notes);
    const roles = cluster ? new Set<string>() : (scan?.roles ?? (await this.#archiveRoles(sandbox, b, ctx)));
    // a paired schema dump owns the objects its data dump fills
    const schemaPart = pairedSchema(b);
    const schemaRoles =
      this.#schemaScan?.roles ?? (schemaPart ? await this.#archiveRoles(sandbox, schemaPart, ctx) : []);
    for (const r of schemaRoles) roles.add(r);
    await this.#createMissingRoles(sandbox, roles, notes);

    const createsOwnDb = Boolean(scan?.has("connect"));
    const db = b.series;
    if (!createsOwnDb)
      await withClient(sandbox, "postgres", (c) =>
        c.query(`CREATE DATABASE ${quoteIdent(db)} TEMPLATE template0`),
      );
    // a -C dump creates its database from template0 itself; an 8.x pg_dumpall file creates its
    // databases from template0 and fills postgres and template1 as they are
    if (cluster && scan?.createsPlpgsql)
      await dropPlpgsql(sandbox, ["template0", "template1", "postgres"], notes);
    else if (dump?.createsPlpgsql && !cluster)
      await dropPlpgsql(sandbox, [createsOwnDb ? "template0" : db], notes);
    const named = seriesNote(b);
    if (named) notes.push(named);

    const stopProgress = this.#watchSize(sandbox, db, ctx);
    try {
      if (schemaPart && this.#schemaScan) {
        notes.push(
          `restored as one backup: the schema-only dump ${schemaPart.id}, then the data-only dump ${b.id}`,
        );
        await this.#psql(sandbox, schemaPart, db, ctx, notes);
        await this.#psql(sandbox, b, db, ctx, notes);
      } else if (schemaPart)
        notes.push(...(await restorePair(sandbox, schemaPart, b, db, ctx, this.#opts.jobs)));
      else if (ARCHIVE_FORMATS.has(b.format)) await this.#pgRestore(sandbox, b, db, ctx, notes);
      else await this.#psql(sandbox, b, createsOwnDb ? "postgres" : db, ctx, notes);
    } catch (err) {
      throw await classify(err, sandbox, plainCompression(b.format) ? "psql" : "pg_restore");
    } finally {
      stopProgress();
    }
    return { databases: cluster ? await restoredDatabases(sandbox) : [db], notes };
  }

  /**
   * Creates the tablespaces the dump places objects in, each in a directory of the sandbox's own
   * (never at the host path a globals file names: a drill must not write there).
   */
  async #createTablespaces(sandbox: Sandbox, names: ReadonlySet<string>, notes: string[]): Promise<void> {
    if (names.size === 0) return;
    const made: string[] = [];
    for (const name of [...names].sort()) {
      const r = await sandbox.exec(
        "sh",
        [
          "-c",
          'd="$HOME/attest-tablespaces/$1" && mkdir -p "$d" && chmod 700 "$d" && cd "$d" && pwd -P',
          "sh",
          String(made.length + 1),
        ],
        { timeoutMs: 30_000 },
      );
      const dir = r.stdout.trim();
      await withClient(sandbox, "postgres", async (c) => {
        const exists = await c.query(
          "select 1 from pg_catalog.pg_tablespace where spcname operator(pg_catalog.=) $1::pg_catalog.name",
          [name],
        );
        if (!exists.rowCount)
          await c.query(`CREATE TABLESPACE ${quoteIdent(name)} LOCATION ${quoteLiteral(dir)}`);
      });
      made.push(name);
    }
    notes.push(
      `created tablespace(s) ${made.join(", ")} inside the sandbox for the objects the dump places there`,
    );
  }

  async #pgRestore(
    sandbox: Sandbox,
    b: Backup,
    db: string,
    ctx: RestoreContext,
    notes: string[] = [],
  ): Promise<void> {
    notes.push(await restoreArchive(sandbox, b, db, ctx, this.#opts.jobs));
  }

  async #psql(sandbox: Sandbox, b: Backup, db: string, ctx: RestoreContext, notes: string[]): Promise<void> {
    this.#restrict ??= supportsRestrict(sandbox);
    const key = (await this.#restrict) ? randomBytes(24).toString("hex") : undefined;
    notes.push(
      key
        ? "plain dump scanned for psql meta-commands and run with psql in restricted mode (lifted only for each \\connect line pg_dump writes)"
        : "plain dump scanned for psql meta-commands (this psql has no restricted mode)",
    );
    const skip = this.#section ? await this.#clusterRoles(sandbox, b, this.#section, key, ctx, notes) : 0;
    const guard = createGuardStream({
      file: b.id,
      ...this.#readOptions(),
      ...(key ? { restrictKey: key } : {}),
    });
    const input = openPlain(b.location, plainCompression(b.format) ?? "none", {
      ...this.#readOptions(),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    // what a pg_dumpall file holds after its roles section, which already ran
    const rest = skip ? input.pipe(skipBytes(skip)) : input;
    if (rest !== input) input.on("error", (err) => rest.destroy(err));
    rest.on("error", (err) => guard.destroy(err));
    rest.pipe(guard);
    await sandbox.exec("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password", "-d", db, "-f", "-"], {
      stdin: guard,
      timeoutMs: ctx.timeoutMs,
      signal: ctx.signal,
    });
  }

  /** The roles section of a pg_dumpall file: what runs before its databases (none without one). */
  async #clusterSection(b: Backup, ctx: RestoreContext): Promise<ClusterSection | undefined> {
    const connects = (this.#scan?.metaCommands ?? [])
      .filter((m) => m.command === "connect" || m.command === "c")
      .map((m) => m.start);
    if (!connects[0]) return undefined;
    const read = { ...this.#readOptions(), ...(ctx.signal ? { signal: ctx.signal } : {}) };
    return readClusterSection(b.location, plainCompression(b.format) ?? "none", connects, read);
  }

  /**
   * Runs the roles section of a pg_dumpall file, forgiving by name only the errors of roles and
   * tablespaces the sandbox already has; returns its length.
   */
  async #clusterRoles(
    sandbox: Sandbox,
    b: Backup,
    cluster: ClusterSection,
    key: string | undefined,
    ctx: RestoreContext,
    notes: string[],
  ): Promise<number> {
    const have = await withClient(sandbox, "postgres", async (c) => {
      const names = async (sql: string) => (await c.query<{ n: string }>(sql)).rows.map((r) => r.n);
      return {
        roles: await names("select rolname as n from pg_catalog.pg_authid"),
        tablespaces: await names("select spcname as n from pg_catalog.pg_tablespace"),
        databases: await names("select datname as n from pg_catalog.pg_database"),
        currentUser: (await names("select current_user as n"))[0] ?? "",
      };
    });
    const made = new Set(have.tablespaces.filter((t) => t !== "pg_default" && t !== "pg_global"));
    const { input: section, kept } = sectionForPsql(cluster.bytes, b.id, key, made);
    const text = section.toString("utf8");
    const judge = new PsqlErrorJudge(forgivenErrors(have, text), text);
    await sandbox.exec(
      "psql",
      ["-X", "-q", "-v", "ON_ERROR_STOP=0", "--no-password", "-d", "postgres", "-f", "-"],
      { stdin: section, timeoutMs: ctx.timeoutMs, signal: ctx.signal, onStderrLine: (l) => judge.line(l) },
    );
    judge.check();
    notes.push(
      "the roles section of the pg_dumpall file (before its first \\connect) ran in a psql of its own that goes on after an error; only errors named in the notes were forgiven",
      ...judge.notes(),
      ...(kept.length
        ? [
            `its DROP TABLESPACE of ${kept.join(", ")} (pg_dumpall --clean) was left out: made inside the sandbox, they stand in for the host paths its CREATE TABLESPACE names`,
          ]
        : []),
    );
    return cluster.bytes.length;
  }

  async #restoreGlobals(sandbox: Sandbox, ctx: RestoreContext, notes: string[]): Promise<void> {
    const file = this.#opts.globals!;
    const gzip = file.endsWith(".gz");
    const read = { ...this.#readOptions(), ...(ctx.signal ? { signal: ctx.signal } : {}) };
    const scan = await prescanPlain(file, gzip, read).catch((err: unknown) => {
      throw new VerifierError(`globals file ${file}: ${coerceError(err).message}`, { cause: err });
    });
    // the globals file is configuration, not the backup under test: a problem there is ours
    const problem = scanProblem(scan, file, true);
    if (problem) throw new VerifierError(problem.message);
    const errors: string[] = [];
    const guard = createGuardStream({ file, ...this.#readOptions() });
    const input = openPlain(file, gzip, read);
    input.on("error", (err) => guard.destroy(err));
    input.pipe(guard);
    // roles that already exist (postgres) make CREATE ROLE fail; those errors are expected
    await sandbox.exec(
      "psql",
      ["-X", "-q", "-v", "ON_ERROR_STOP=0", "--no-password", "-d", "postgres", "-f", "-"],
      {
        stdin: guard,
        timeoutMs: 120_000,
        signal: ctx.signal,
        onStderrLine: (l) => {
          if (/ERROR:/.test(l) && !/already exists/.test(l)) errors.push(l);
        },
      },
    );
    notes.push(
      `restored globals from ${file}${errors.length ? ` (${errors.length} errors: ${errors[0]})` : ""}`,
    );
  }

  async #archiveRoles(sandbox: Sandbox, b: Backup, ctx: RestoreContext): Promise<Set<string>> {
    // the TOC holds the SQL pg_restore would print: read there, no confined process needed
    const fromToc = archiveRoles(b.location, b.format, b.id);
    if (fromToc) return fromToc;
    const scanner = new SqlScanner();
    try {
      await sandbox.exec("pg_restore", ["--schema-only", "-f", "-", sandbox.inputPath(b.location)], {
        timeoutMs: Math.min(ctx.timeoutMs, 600_000),
        signal: ctx.signal,
        onStdoutLine: (l) => scanner.line(l),
      });
    } catch (err) {
      throw await classify(err, sandbox, "pg_restore");
    }
    // the archive's SQL (definitions, ACLs) is what pg_restore will run: same rules as plain SQL
    const problem = scanProblem(scanner, `${b.id} (archive TOC)`);
    if (problem) throw problem;
    return scanner.roles;
  }

  async #createMissingRoles(sandbox: Sandbox, roles: Set<string>, notes: string[]): Promise<void> {
    if (roles.size === 0) return;
    const created = await withClient(sandbox, "postgres", async (c) => {
      const existing = new Set(
        (await c.query<{ rolname: string }>("select rolname from pg_catalog.pg_authid")).rows.map(
          (r) => r.rolname,
        ),
      );
      const missing = [...roles].filter((r) => !existing.has(r)).sort();
      for (const r of missing) await c.query(`CREATE ROLE ${quoteIdent(r)} NOLOGIN`);
      return missing;
    });
    if (created.length)
      notes.push(`created ${created.length} role(s) the dump references: ${created.join(", ")}`);
  }

  #watchSize(sandbox: Sandbox, db: string, ctx: RestoreContext): () => void {
    let stopped = false;
    const tick = async () => {
      while (!stopped) {
        // unref: a pending tick must not keep Attest running once the drill is over
        await new Promise((r) => setTimeout(r, 2000).unref());
        if (stopped) break;
        try {
          const size = await withClient(sandbox, "postgres", async (c) => {
            const r = await c.query<{ s: string }>(
              `select coalesce(pg_catalog.pg_database_size(${quoteLiteral(db)}::pg_catalog.name), 0::pg_catalog.int8) as s`,
            );
            return Number(r.rows[0]?.s ?? 0);
          });
          ctx.progress(`restoring, ${formatBytes(size)} written`);
        } catch {
          // the database may not exist yet (psql -C dumps create it themselves)
        }
      }
    };
    void tick();
    return () => {
      stopped = true;
    };
  }
}

/** `p`, with its rejection handled until someone awaits it (a restore that fails first never does). */
function settledLater<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

async function supportsRestrict(sandbox: Sandbox): Promise<boolean> {
  const r = await sandbox.exec("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-f", "-"], {
    stdin: "\\restrict attestprobe\n\\unrestrict attestprobe\n",
    timeoutMs: 30_000,
    allowFailure: true,
  });
  return r.code === 0;
}

/**
 * pg_dump 8.x creates plpgsql itself (`CREATE PROCEDURAL LANGUAGE plpgsql;`), which fails on
 * 9.0 and later because every new database has it: dropped from the fresh database first (or
 * from template0, which a -C dump's CREATE DATABASE copies; for an 8.x pg_dumpall file also
 * from postgres and template1, which it fills as they are), so that statement creates it and
 * psql still stops at any other error.
 */
async function dropPlpgsql(sandbox: Sandbox, dbs: string[], notes: string[]): Promise<void> {
  const allow = (on: boolean) =>
    withClient(sandbox, "postgres", (c) =>
      c.query(`UPDATE pg_catalog.pg_database SET datallowconn = ${on} WHERE datname = 'template0'`),
    );
  for (const db of dbs) {
    const template = db === "template0";
    if (template) await allow(true);
    try {
      await withClient(sandbox, db, (c) => c.query("DROP EXTENSION IF EXISTS plpgsql"));
    } finally {
      if (template) await allow(false);
    }
  }
  const where =
    dbs.length > 1
      ? dbs.map((db) =>
          db === "template0" ? "template0 (which CREATE DATABASE … TEMPLATE template0 copies)" : db,
        )
      : dbs[0] === "template0"
        ? ["template0, which the dump's CREATE DATABASE copies,"]
        : ["the fresh database"];
  notes.push(
    `the dump creates plpgsql itself (CREATE PROCEDURAL LANGUAGE plpgsql, as pg_dump 8.x writes; on 9.0 and later it fails with "already exists", the one harmless error of loading it by hand): plpgsql was dropped from ${where.join(", ")} first, so that statement creates it`,
  );
}

/** Every database a pg_dumpall file left, templates aside, as the checks should see them. */
async function restoredDatabases(sandbox: Sandbox): Promise<string[]> {
  return withClient(sandbox, "postgres", async (c) =>
    (
      await c.query<{ n: string }>(
        "select datname as n from pg_catalog.pg_database where not datistemplate and datallowconn order by datname",
      )
    ).rows.map((r) => r.n),
  );
}

/** Maps a restore tool's failure to fail (the backup) or error (the verifier). */
async function classify(err: unknown, sandbox: Sandbox, tool: string): Promise<Error> {
  const e = coerceError(err);
  if (e instanceof BackupDefectError || e instanceof VerifierError) return e;
  if (!(e instanceof ProcessError) || !e.result)
    return new VerifierError(`${tool}: ${e.message}`, { cause: e });
  const tail = e.result.stderrTail;
  const short = lastLines(tail, 3) || e.message;
  if (e.result.timedOut) return new VerifierError(`${tool} timed out: ${short}`, { cause: e });
  if (/No space left on device|could not extend file|disk full/i.test(tail)) {
    return new VerifierError(`sandbox ran out of disk space during restore: ${short}`, { cause: e });
  }
  if (/could not open extension control file|extension "[^"]+" is not available/i.test(tail)) {
    return new VerifierError(`the sandbox lacks an extension the dump needs: ${short}`, { cause: e });
  }
  if (/unsupported version .* in file header/i.test(tail)) {
    return new VerifierError(`the sandbox's ${tool} is too old for this archive: ${short}`, { cause: e });
  }
  if (
    !(await sandbox.isRunning().catch(() => false)) ||
    /server closed the connection unexpectedly|terminating connection due to administrator/i.test(tail)
  ) {
    if (!(await sandbox.isRunning().catch(() => false))) {
      return new VerifierError(`the sandbox server stopped during the restore: ${short}`, { cause: e });
    }
  }
  if (/backslash commands are restricted/.test(tail)) {
    return new BackupDefectError(`psql refused a meta-command in the dump: ${short}`, { cause: e });
  }
  // with -j, the worker that met the damage prints its error and the leader only says the worker
  // died: name the worker's error, whichever line came last
  const worker = /worker process died unexpectedly/.test(tail) ? firstProblem(tail) : undefined;
  const shown = worker && !short.includes(worker.trim()) ? `${worker.trim()} | ${short}` : short;
  return new BackupDefectError(`${tool} failed: ${shown}`, { cause: e });
}

/** The tablespaces an archive's TOC names; none when the TOC cannot be read (pg_restore judges it). */
function tocTablespaces(b: Backup): Set<string> {
  try {
    return readTocTablespaces(b.location, b.format);
  } catch {
    return new Set();
  }
}
