// Preloaded into the Attest process (node --import): at exit, writes that process's own peak
// resident set (VmHWM, kB) to $BENCH_PEAK_RSS_FILE. Unlike `/usr/bin/time -f %M`, this excludes
// the children Attest waits for (pg_restore, pg_amcheck, and the sandbox postmaster with its
// backends, whose shared buffers would otherwise count as Attest's memory).
import { readFileSync, writeFileSync } from "node:fs";

const out = process.env.BENCH_PEAK_RSS_FILE;
if (out) {
  process.on("exit", () => {
    let kb = 0;
    try {
      kb = Number(/VmHWM:\s+(\d+)\s+kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? 0);
    } catch {
      kb = process.resourceUsage().maxRSS;
    }
    writeFileSync(out, `${kb}\n`);
  });
}
