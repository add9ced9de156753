/**
 * The newest transaction end (commit or abort) in an archive, read with pg_waldump from the
 * newest segments: the upper end of the window a time target can be chosen in.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runConfined } from "../runtimes/local/confine.js";
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

// one confined run per segment: expand a compressed segment into the scratch directory (at most
// one segment's size: a decompression bomb stops there), then pg_waldump over it
const DUMP_SCRIPT = [
  "src=$1; dec=$2; out=$3; size=$4; shift 4",
  'if [ "$dec" != none ]; then "$dec" -dc < "$src" 2>/dev/null | head -c "$size" > "$out"; fi',
  'exec "$@"',
].join("\n");

const DECOMPRESSOR = { gz: "gzip", lz4: "lz4", zst: "zstd" } as const;

/**
 * The newest commit/abort time on timeline `tli`, looking back up to `maxSegments` segments;
 * undefined when pg_waldump is not available or finds none. pg_waldump and the decompressors
 * parse archive content, so they run confined (runConfined): no network, nothing of the host
 * but the archive (read-only), /usr and a scratch directory.
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
      // pg_waldump reads plain files only: a compressed segment is expanded into the scratch dir
      const plain = name.replace(/\.(gz|lz4|zst)$/, "");
      const dir = f.compression ? work : archive.dir;
      const r = await runConfined(
        "/bin/sh",
        [
          "-c",
          DUMP_SCRIPT,
          "sh",
          archive.path(name),
          f.compression ? DECOMPRESSOR[f.compression] : "none",
          join(work, plain),
          String(archive.index.segSize),
          waldump,
          "-r",
          "Transaction",
          "-p",
          dir,
          plain,
          plain,
        ],
        {
          readOnly: [archive.dir],
          writable: [work],
          cwd: work,
          timeoutMs: opts.timeoutMs ?? 30_000,
          env: { TZ: "UTC", LC_ALL: "C" },
          allowFailure: true,
          maxStdoutBytes: 256 * 1024 * 1024,
        },
      );
      if (f.compression) await rm(join(work, plain), { force: true });
      const time = lastXactEndIn(r.stdout);
      if (time) return { time, segment: plain };
    }
    return undefined;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
