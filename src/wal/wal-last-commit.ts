/**
 * The newest transaction end (commit or abort) in an archive, read with pg_waldump from the
 * newest segments: the upper end of the window a time target can be chosen in.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runProcess } from "../util/process.js";
import { readDecompressedHead } from "./compression.js";
import type { WalArchive } from "./wal-archive.js";
import { parseWalFileName } from "./wal-names.js";

/** Finds a pg_waldump of `major` on this host. */
export function findWalDump(major: number | undefined): string | undefined {
  if (major === undefined) return undefined;
  for (const p of [`/usr/lib/postgresql/${major}/bin/pg_waldump`, `/usr/pgsql-${major}/bin/pg_waldump`]) {
    if (existsSync(p)) return p;
  }
  return undefined;
}

const XACT_END =
  /desc: (?:COMMIT|ABORT)(?:_PREPARED)? (?:\d+: )?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC/;

/** The last transaction end time printed by `pg_waldump -r Transaction` (run with TZ=UTC). */
export function lastXactEndIn(output: string): string | undefined {
  let last: string | undefined;
  for (const line of output.split("\n")) {
    const m = XACT_END.exec(line);
    if (m) last = m[1];
  }
  if (!last) return undefined;
  const [date, time] = last.split(" ");
  const [hms, frac = ""] = time!.split(".");
  // JS dates hold milliseconds: cut (never round up) so the time is not after the record
  return new Date(`${date}T${hms}.${frac.padEnd(3, "0").slice(0, 3)}Z`).toISOString();
}

/**
 * The newest commit/abort time on timeline `tli`, looking back up to `maxSegments` segments;
 * undefined when pg_waldump is not available or finds none.
 */
export async function lastTransactionTime(
  archive: WalArchive,
  tli: number,
  opts: { maxSegments?: number; timeoutMs?: number } = {},
): Promise<{ time: string; segment: string } | undefined> {
  const waldump = findWalDump(archive.header?.pgMajor);
  const segs = archive.index.segments.get(tli);
  if (!waldump || !segs?.length) return undefined;
  const files = archive.index.files.get(tli)!;
  const work = await mkdtemp(join(tmpdir(), "attest-waldump-"));
  try {
    for (let i = segs.length - 1; i >= Math.max(0, segs.length - (opts.maxSegments ?? 6)); i--) {
      const name = files.get(segs[i]!)!;
      const f = parseWalFileName(name, archive.index.segSize)!;
      // pg_waldump reads plain files only: a compressed segment is expanded into a scratch dir
      const plain = name.replace(/\.(gz|lz4|zst)$/, "");
      let dir = archive.dir;
      if (f.compression) {
        dir = work;
        await writeFile(
          join(work, plain),
          await readDecompressedHead(archive.path(name), f.compression, archive.index.segSize),
        );
      }
      const r = await runProcess(waldump, ["-r", "Transaction", "-p", dir, plain, plain], {
        timeoutMs: opts.timeoutMs ?? 30_000,
        env: { ...process.env, TZ: "UTC", LC_ALL: "C" },
        allowFailure: true,
        maxStdoutBytes: 256 * 1024 * 1024,
      });
      if (f.compression) await rm(join(work, plain), { force: true });
      const time = lastXactEndIn(r.stdout);
      if (time) return { time, segment: plain };
    }
    return undefined;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
