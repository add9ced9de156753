/**
 * Decompressors for plain dumps stored as .bz2, .xz, .zst or .lz4. A decompressor parses
 * bytes an attacker may have crafted, so it runs confined (bubblewrap: no network, nothing of
 * the host but /usr and the one file), and hands its output back as a byte stream that the
 * scanner and the guard read like any other plain dump.
 */
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { assertConfinable, confinedReaderSpawn, etcDirFor, readerOf } from "../../runtimes/local/confine.js";
import { BackupDefectError, coerceError, VerifierError } from "../../util/errors.js";

/** Compressions of plain dumps read through an external decompressor. */
export const EXTERNAL_COMPRESSIONS = ["bzip2", "xz", "zstd", "lz4"] as const;
/** One of EXTERNAL_COMPRESSIONS. */
export type ExternalCompression = (typeof EXTERNAL_COMPRESSIONS)[number];

/** The program and arguments that write a file's decompressed bytes to stdout. */
const PROGRAMS: Record<ExternalCompression, { program: string; args: string[] }> = {
  bzip2: { program: "/usr/bin/bzip2", args: ["-dc", "--"] },
  xz: { program: "/usr/bin/xz", args: ["-dc", "--"] },
  zstd: { program: "/usr/bin/zstd", args: ["-dcq", "--"] },
  lz4: { program: "/usr/bin/lz4", args: ["-dcq", "--"] },
};

/** The compression of a file, from its first bytes; undefined when none of these. */
export function compressionOf(head: Buffer): ExternalCompression | undefined {
  if (head.length >= 3 && head.toString("latin1", 0, 3) === "BZh") return "bzip2";
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])))
    return "xz";
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return "zstd";
  if (head.length >= 4 && head.readUInt32LE(0) === 0x184d2204) return "lz4";
  return undefined;
}

/**
 * The decompressed bytes of `path`, produced by a confined decompressor. The stream fails
 * with a BackupDefectError naming the tool's complaint when the data is damaged or cut, and
 * with a VerifierError when the decompressor cannot run here.
 */
export function openDecompressed(
  path: string,
  compression: ExternalCompression,
  signal?: AbortSignal,
): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const { program, args } = PROGRAMS[compression];
  const file = resolve(path);
  // as root: run as the file's owner (root inside a user namespace cannot read another's 0600 file)
  const reader = readerOf(file);
  const etcDir = etcDirFor(reader);
  void assertConfinable(reader, etcDir)
    .then(() => {
      if (out.destroyed) return;
      const cmd = confinedReaderSpawn(program, [...args, file], file);
      const child = spawn(cmd.cmd, cmd.args, {
        stdio: ["ignore", "pipe", "pipe"],
        env: cmd.env,
        ...(cmd.uid !== undefined ? { uid: cmd.uid, gid: cmd.gid } : {}),
        ...(signal ? { signal } : {}),
      });
      let stderr = "";
      child.stderr.on("data", (b: Buffer) => {
        stderr = (stderr + b.toString("utf8")).slice(-2000);
      });
      child.stdout.pipe(out, { end: false });
      // the reader stopped (a refusal, the drill's end): the decompressor goes too
      out.on("close", () => child.kill("SIGKILL"));
      child.on("error", (err) => {
        out.destroy(new VerifierError(`cannot run ${program}: ${err.message}`, { cause: err }));
      });
      child.on("close", (code, sig) => {
        if (out.destroyed) return;
        if (code === 0) return out.end();
        const why = stderr.trim().split("\n").slice(-2).join(" ") || `exit ${code ?? sig}`;
        // bubblewrap's own complaints (a path it cannot bind, no user namespaces) are ours
        if (/^bwrap:/m.test(stderr))
          return out.destroy(new VerifierError(`cannot confine ${program}: ${why}`));
        if (code === 127)
          return out.destroy(new VerifierError(`${program} is not installed on this host: ${why}`));
        out.destroy(new BackupDefectError(`${compression} stream is damaged or cut off: ${why}`));
      });
    })
    .catch((err: unknown) => {
      out.destroy(coerceError(err));
    });
  return out;
}
