/** Rule `size_anomaly`: the newest backup much smaller or larger than the median of the ones before. */
import type { Violation } from "../model.js";
import { formatBytes } from "../util/duration.js";
import { label, type SeriesInput, violation } from "./series-input.js";
import { median } from "./trend.js";

const DEFAULT_FACTOR = 3;
const DEFAULT_WINDOW = 7;
/** Fewer earlier backups than this give no meaningful median. */
const MIN_HISTORY = 3;

/** Evaluates `size_anomaly` for one series (on by default; `enabled: false` turns it off). */
export function sizeAnomalyRule(s: SeriesInput): Violation[] {
  const cfg = s.policies.size_anomaly;
  if (cfg && !cfg.enabled) return [];
  const factor = cfg?.factor ?? DEFAULT_FACTOR;
  const window = cfg?.window ?? DEFAULT_WINDOW;
  const newest = s.backups.at(-1);
  const before = s.backups.slice(-1 - window, -1);
  if (!newest || before.length < MIN_HISTORY) return [];
  const med = median(before.map((b) => b.backup.sizeBytes));
  if (!med || med <= 0) return [];
  const size = newest.backup.sizeBytes;
  const name = label(s.source, s.series);
  const ratio = size / med;
  const evidence = {
    aspect: "newest",
    backupId: newest.backup.id,
    sizeBytes: size,
    medianBytes: med,
    window: before.length,
    factor,
    ratio: Number(ratio.toFixed(3)),
  };
  const of = `the median ${formatBytes(med)} of the previous ${before.length}`;
  if (size <= 0) {
    const msg = `newest backup of ${name} (${newest.backup.id}) is empty (0 bytes); the median of the previous ${before.length} is ${formatBytes(med)}`;
    return [violation(s, "size_anomaly", "critical", msg, evidence, newest.at)];
  }
  if (ratio < 1 / factor || ratio > factor) {
    const how = ratio < 1 ? `${(1 / ratio).toFixed(1)}x smaller` : `${ratio.toFixed(1)}x larger`;
    const msg = `newest backup of ${name} (${newest.backup.id}) is ${formatBytes(size)}, ${how} than ${of}`;
    return [violation(s, "size_anomaly", "warning", msg, evidence, newest.at)];
  }
  return [];
}
