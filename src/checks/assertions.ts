/** User SQL assertions: a query's first value compared with an expectation. */
import type { CheckResult } from "../model.js";
import { withClient } from "../runtimes/sql.js";
import { describeError } from "../util/errors.js";
import type { Check } from "./check.js";
import { result } from "./helpers.js";

/** Whether `value` satisfies `expect` (`> 0`, `= 42`, `between 10 and 20`, `is null`, `~ regex`). */
export function satisfies(value: unknown, expect: string): boolean {
  const e = expect.trim();
  if (/^is\s+null$/i.test(e)) return value === null || value === undefined;
  if (/^is\s+not\s+null$/i.test(e)) return value !== null && value !== undefined;
  if (value === null || value === undefined) return false;
  const text = value instanceof Date ? value.toISOString() : String(value);
  const between = /^between\s+(\S+)\s+and\s+(\S+)$/i.exec(e);
  if (between) {
    const n = Number(text);
    return n >= Number(between[1]) && n <= Number(between[2]);
  }
  const re = /^~\s*(.+)$/.exec(e);
  if (re) return new RegExp(re[1]!).test(text);
  const m = /^(>=|<=|!=|<>|=|>|<)\s*(.+)$/.exec(e);
  if (!m) return false;
  const [, op, rawRhs] = m;
  const rhs = rawRhs!.replace(/^'(.*)'$/, "$1");
  const numeric = text.trim() !== "" && !Number.isNaN(Number(text)) && !Number.isNaN(Number(rhs));
  const cmp = numeric ? Math.sign(Number(text) - Number(rhs)) : text.localeCompare(rhs);
  switch (op) {
    case "=":
      return cmp === 0;
    case "!=":
    case "<>":
      return cmp !== 0;
    case ">":
      return cmp > 0;
    case ">=":
      return cmp >= 0;
    case "<":
      return cmp < 0;
    default:
      return cmp <= 0;
  }
}

/** Runs every configured assertion; each is its own result. */
export async function runAssertions(ctx: Parameters<Check["run"]>[0]): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const q of ctx.config.queries) {
    const name = `query: ${q.name}`;
    const t0 = Date.now();
    if (!ctx.restored.databases.includes(q.database)) {
      out.push({ ...result(name, "skip", `database ${q.database} is not in this backup`), durationMs: 0 });
      continue;
    }
    try {
      const value = await withClient(
        ctx.sandbox,
        q.database,
        async (c) => {
          const r = await c.query({ text: q.sql, rowMode: "array" });
          return (r.rows[0] as unknown[] | undefined)?.[0] ?? null;
        },
        "user",
      );
      const ok = satisfies(value, q.expect);
      const shown = value instanceof Date ? value.toISOString() : String(value);
      out.push({
        ...result(
          name,
          ok ? "pass" : "fail",
          `${shown} ${ok ? "satisfies" : "does not satisfy"} ${q.expect}`,
        ),
        durationMs: Date.now() - t0,
      });
    } catch (err) {
      // a query that errors on the restored copy is a finding about the copy (missing table…)
      out.push({
        ...result(name, "fail", `query failed: ${describeError(err)}`),
        durationMs: Date.now() - t0,
      });
    }
  }
  return out;
}
