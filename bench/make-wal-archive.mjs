// Writes a fake WAL archive for the static-inspection benchmark: COUNT empty files named as
// consecutive timeline-1 segments (16 MiB segments) with one segment missing in the middle, a
// 00000002.history file (a promotion at the archive's end), and a tiny plain base backup
// (PG_VERSION, global/, backup_label) that starts 16 segments into the archive.
//   node bench/make-wal-archive.mjs DIR COUNT   → prints a JSON description on stdout
import { closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [dir, countArg] = process.argv.slice(2);
const count = Number(countArg);
if (!dir || !Number.isInteger(count) || count < 100)
  throw new Error("usage: make-wal-archive.mjs DIR COUNT (≥ 100)");
const SEG = 16 * 1024 * 1024;
const PER_LOG = 0x1_0000_0000 / SEG; // 256 segments per "log" id
const hex8 = (n) => n.toString(16).toUpperCase().padStart(8, "0");
const segName = (tli, segNo) => `${hex8(tli)}${hex8(Math.floor(segNo / PER_LOG))}${hex8(segNo % PER_LOG)}`;
const lsnOf = (segNo, offset = 0) => {
  const b = BigInt(segNo) * BigInt(SEG) + BigInt(offset);
  return `${(b >> 32n).toString(16).toUpperCase()}/${(b & 0xffffffffn).toString(16).toUpperCase()}`;
};

const wal = join(dir, "wal");
const backups = join(dir, "backups");
mkdirSync(wal, { recursive: true });
const first = PER_LOG; // 000000010000000100000000
const gap = first + Math.floor(count / 2);
let segNo = first;
let last = first;
for (let written = 0; written < count; segNo++) {
  if (segNo === gap) continue;
  closeSync(openSync(join(wal, segName(1, segNo)), "w"));
  last = segNo;
  written++;
}
writeFileSync(join(wal, "00000002.history"), `1\t${lsnOf(last + 1)}\tno recovery target specified\n`);

const backup = join(backups, "base-1");
mkdirSync(join(backup, "global"), { recursive: true });
writeFileSync(join(backup, "PG_VERSION"), "15\n");
const start = first + 16;
writeFileSync(
  join(backup, "backup_label"),
  [
    `START WAL LOCATION: ${lsnOf(start, 0x28)} (file ${segName(1, start)})`,
    `CHECKPOINT LOCATION: ${lsnOf(start, 0x60)}`,
    "BACKUP METHOD: streamed",
    "BACKUP FROM: primary",
    `START TIME: ${new Date(Date.now() - 3600_000).toISOString().slice(0, 19).replace("T", " ")} UTC`,
    "LABEL: attest bench",
    "START TIMELINE: 1",
    "",
  ].join("\n"),
);
console.log(
  JSON.stringify({
    segments: count,
    first: segName(1, first),
    last: segName(1, last),
    gap: segName(1, gap),
    history: "00000002.history",
    backupStart: `${lsnOf(start, 0x28)} (${segName(1, start)})`,
  }),
);
