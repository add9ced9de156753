/**
 * When a cron plan fires, as a pure function of time: which instants fall in (from, to].
 *
 * croner does the calendar arithmetic on local wall-clock time; this module maps wall
 * times to instants so daylight-saving changes follow cron's convention (Vixie cron,
 * cronie): a fixed-hour plan whose wall time falls into a skipped hour runs once right
 * after the change, and runs once (the first time) in a repeated hour; a plan with a
 * wildcard hour (`* * * * *`, `0 * * * *`) keeps firing on every real minute or hour
 * that matches. croner's own time-zone mode loses an hour of such runs in autumn.
 */
import { Cron } from "croner";

/** A plan's timing: a cron expression read in an IANA time zone. */
export interface CronSchedule {
  cron: string;
  timezone: string;
}

const MINUTE = 60_000;
const DAY = 86_400_000;

const NICKNAMES: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

interface CompiledSchedule {
  /** croner at a fixed offset 0 (no ICU per step): its UTC dates are our wall-clock times. */
  wall: Cron;
  timezone: string;
  /** Whether the hour field is a wildcard (`*`, `*\/2`): such plans follow real time across DST. */
  hourWildcard: boolean;
}

const compiled = new Map<string, CompiledSchedule>();
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timezone, f);
  }
  return f;
}

/** Throws a one-line message when the expression or the time zone is not valid. */
export function validateSchedule(s: CronSchedule): void {
  compile(s);
}

function compile(s: CronSchedule): CompiledSchedule {
  const key = `${s.timezone}\n${s.cron}`;
  const hit = compiled.get(key);
  if (hit) return hit;
  try {
    formatter(s.timezone);
  } catch {
    throw new Error(`unknown time zone "${s.timezone}" (use an IANA name such as Europe/Berlin or UTC)`);
  }
  const expr = NICKNAMES[s.cron.trim().toLowerCase()] ?? s.cron.trim();
  let wall: Cron;
  try {
    wall = new Cron(expr, { utcOffset: 0, paused: true });
  } catch (err) {
    throw new Error(`"${s.cron}" is not a cron expression: ${(err as Error).message}`);
  }
  const fields = expr.split(/\s+/);
  // 5 fields: minute hour …; 6 fields: second minute hour …
  const hour = fields[fields.length >= 6 ? 2 : 1] ?? "*";
  const out = { wall, timezone: s.timezone, hourWildcard: hour.startsWith("*") };
  compiled.set(key, out);
  return out;
}

/** The UTC offset at `t` read from ICU (slow: tens of microseconds). */
function icuOffset(t: number, timezone: string): number {
  const p: Record<string, number> = {};
  const whole = Math.floor(t / 1000) * 1000;
  for (const part of formatter(timezone).formatToParts(new Date(whole)))
    if (part.type !== "literal") p[part.type] = Number(part.value);
  return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!) - whole;
}

/** A UTC day's offsets: one, or two with the instant the clocks change. */
interface DayOffsets {
  before: number;
  after: number;
  changeAt: number;
}

const dayCache = new Map<string, DayOffsets>();

/**
 * Offsets per UTC day, each read from ICU once (clocks change at most once a day in any
 * real zone); the instant of a change is found by bisection to the second.
 */
function dayOffsets(day: number, timezone: string): DayOffsets {
  const key = `${timezone}\n${day}`;
  const hit = dayCache.get(key);
  if (hit) return hit;
  const start = day * DAY;
  const before = icuOffset(start, timezone);
  const after = icuOffset(start + DAY - 1000, timezone);
  let changeAt = Number.POSITIVE_INFINITY;
  if (before !== after) {
    let lo = start;
    let hi = start + DAY - 1000;
    while (hi - lo > 1000) {
      const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
      if (icuOffset(mid, timezone) === before) lo = mid;
      else hi = mid;
    }
    changeAt = hi;
  }
  if (dayCache.size > 100_000) dayCache.clear();
  const out = { before, after, changeAt };
  dayCache.set(key, out);
  return out;
}

/** The UTC offset (ms) in effect at instant `t`. */
export function offsetAt(t: number, timezone: string): number {
  const d = dayOffsets(Math.floor(t / DAY), timezone);
  return t < d.changeAt ? d.before : d.after;
}

/** The wall-clock time of instant `t` in `timezone`, written as if it were UTC (ms). */
export function wallTime(t: number, timezone: string): number {
  return t + offsetAt(t, timezone);
}

/**
 * The instants whose wall time is `wall`: one normally, two in a repeated hour, none in a
 * skipped one.
 */
export function instantsOfWall(wall: number, timezone: string): number[] {
  const offsets = new Set([offsetAt(wall - DAY, timezone), offsetAt(wall + DAY, timezone)]);
  const out: number[] = [];
  for (const off of offsets) {
    const t = wall - off;
    if (wallTime(t, timezone) === wall && !out.includes(t)) out.push(t);
  }
  return out.sort((a, b) => a - b);
}

/** The first instant after a skipped hour that contains `wall` (the moment clocks jump). */
function gapEnd(wall: number, timezone: string): number {
  const before = offsetAt(wall - DAY, timezone);
  const after = offsetAt(wall + DAY, timezone);
  let lo = wall - Math.max(before, after);
  let hi = wall - Math.min(before, after);
  // invariant: offset(lo) is the old offset, offset(hi) the new one
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (offsetAt(mid, timezone) === before) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** How far wall time can run backwards near instant `t` (the DST shift around it, else 0). */
function shiftNear(t: number, timezone: string): number {
  return Math.abs(offsetAt(t - DAY, timezone) - offsetAt(t + DAY, timezone));
}

/**
 * The instants in (from, to] at which the plan fires, ascending. Pure: the same arguments
 * give the same answer. `limit` stops early (a long window of a minutely plan).
 */
export function fireTimes(s: CronSchedule, from: Date, to: Date, limit = Number.POSITIVE_INFINITY): Date[] {
  const c = compile(s);
  const t0 = from.getTime();
  const t1 = to.getTime();
  if (!(t1 > t0)) return [];
  // wall time runs backwards in an autumn change: start early enough to see the repeated hour
  let cursor = wallTime(t0, c.timezone) - shiftNear(t0, c.timezone) - 1000;
  const end = wallTime(t1, c.timezone) + shiftNear(t1, c.timezone);
  const out = new Set<number>();
  for (;;) {
    const next = c.wall.nextRun(new Date(cursor));
    if (!next || next.getTime() > end) break;
    cursor = next.getTime();
    const instants = instantsOfWall(cursor, c.timezone);
    let fire: number[];
    if (instants.length === 0) fire = c.hourWildcard ? [] : [gapEnd(cursor, c.timezone)];
    else fire = c.hourWildcard ? instants : instants.slice(0, 1);
    for (const t of fire) if (t > t0 && t <= t1) out.add(t);
    if (out.size >= limit) {
      // a later wall time yields an earlier instant only within the DST shift
      const kth = [...out].sort((a, b) => a - b)[limit - 1]!;
      if (cursor > wallTime(kth, c.timezone) + shiftNear(kth, c.timezone)) break;
    }
  }
  return [...out]
    .sort((a, b) => a - b)
    .slice(0, Number.isFinite(limit) ? limit : undefined)
    .map((t) => new Date(t));
}

const WINDOWS = [60 * MINUTE, DAY, 8 * DAY, 32 * DAY, 367 * DAY, 5 * 367 * DAY];

/** The first fire time strictly after `after`, or undefined when the plan never fires again. */
export function nextFire(s: CronSchedule, after: Date): Date | undefined {
  const t = after.getTime();
  for (const w of WINDOWS) {
    const hit = fireTimes(s, after, new Date(t + w), 1)[0];
    if (hit) return hit;
  }
  return undefined;
}

/** The last fire time in (notBefore, at], or undefined when there is none. */
export function lastFireAtOrBefore(s: CronSchedule, at: Date, notBefore: Date): Date | undefined {
  const t = at.getTime();
  for (const w of WINDOWS) {
    const from = Math.max(notBefore.getTime(), t - w);
    const hits = fireTimes(s, new Date(from), at);
    if (hits.length) return hits.at(-1);
    if (from === notBefore.getTime()) return undefined;
  }
  return fireTimes(s, notBefore, at).at(-1);
}
