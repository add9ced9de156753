/**
 * A custom archive inside a gzip stream (`pg_dump -Fc | gzip`): pg_restore reads archives it
 * can seek in (parallel jobs, the TOC checks), so the stream is decompressed first, by gzip inside
 * the sandbox (either runtime), into the sandbox's own directory; the archive is then taken out of
 * the sandbox's reach (`Sandbox.takeFile`) and restored as any on disk.
 */
import type { DrillPlan } from "../../model.js";
import type { Sandbox } from "../../runtimes/runtime.js";
import { BackupDefectError, coerceError, VerifierError } from "../../util/errors.js";
import { ProcessError } from "../../util/process.js";
import type { RestoreContext, RestoreOutcome, Restorer } from "../restorer.js";

/** What gzip says of a stream that is cut off or damaged (the backup's fault). */
const DAMAGED = /unexpected end of file|invalid compressed data|crc error|length error|not in gzip format/i;

/** Decompresses a gzipped custom archive inside the sandbox, then hands it to the archive restorer. */
export class GzippedArchiveRestorer implements Restorer {
  readonly name: string;
  readonly sandboxMode = "init" as const;
  readonly #inner: Restorer;

  constructor(inner: Restorer) {
    this.#inner = inner;
    this.name = inner.name;
  }

  inputs(plan: DrillPlan): string[] {
    return this.#inner.inputs?.(plan) ?? [plan.backup.location];
  }

  async preflight(plan: DrillPlan): Promise<void> {
    const b = plan.backup;
    if (b.format !== "custom-gzip") throw new VerifierError(`${b.id}: not a gzipped custom archive`);
  }

  async restore(sandbox: Sandbox, ctx: RestoreContext): Promise<RestoreOutcome> {
    const b = ctx.plan.backup;
    if (!sandbox.takeFile)
      throw new VerifierError(
        `${b.id}: the ${sandbox.runtime} runtime cannot take a decompressed archive out of its sandbox's reach`,
      );
    ctx.progress("decompressing the archive");
    const started = Date.now();
    let dir: string;
    try {
      const r = await sandbox.exec(
        "sh",
        [
          "-c",
          'umask 077 && mkdir -p "$HOME/attest-gunzip" && gzip -dc < "$1" > "$HOME/attest-gunzip/archive.dump" && cd "$HOME/attest-gunzip" && pwd -P',

          "sh",
          sandbox.inputPath(b.location),
        ],
        { timeoutMs: ctx.timeoutMs, ...(ctx.signal ? { signal: ctx.signal } : {}) },
      );
      dir = r.stdout.trim();
    } catch (err) {
      const e = coerceError(err);
      const said = e instanceof ProcessError ? (e.result?.stderrTail ?? "") : "";
      if (DAMAGED.test(said))
        throw new BackupDefectError(`${b.id}: the gzip stream is cut off or damaged (${said.trim()})`, {
          cause: e,
        });
      throw e;
    }
    const gunzipMs = Date.now() - started;
    // Attest reads the archive's TOC on the host, also after pg_restore ran the backup's code in
    // the sandbox: out of the sandbox's reach first, so it cannot be swapped for a link
    const archive = await sandbox.takeFile(`${dir}/archive.dump`);
    const plan: DrillPlan = {
      ...ctx.plan,
      backup: { ...b, location: archive, format: "custom" },
    };
    await this.#inner.preflight?.(plan, ctx.signal);
    const out = await this.#inner.restore(sandbox, { ...ctx, plan });
    return {
      ...out,
      notes: [
        `a custom archive in a gzip stream (pg_dump -Fc | gzip): decompressed by gzip inside the sandbox, into its own directory, in ${gunzipMs} ms, then restored as a custom archive`,
        ...out.notes,
      ],
    };
  }
}
