/** The one readiness-polling helper: everything that waits goes through here. */

/** A clock that can be replaced in tests. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(abortReason(signal));
      const t = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(t);
        reject(abortReason(signal!));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};

/** The reason an AbortSignal carries, as an Error. */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new Error(typeof r === "string" ? r : "aborted");
}

/** Options of retryUntil. */
export interface RetryOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** Longest pause between attempts as the interval backs off (default 2000). */
  maxIntervalMs?: number;
  /** What is being waited for, for the timeout message. */
  what: string;
  signal?: AbortSignal;
  clock?: Clock;
}

/**
 * Calls `fn` until it returns a value other than undefined; throws when `timeoutMs` passes,
 * naming the limit and the last error seen.
 */
export async function retryUntil<T>(fn: () => Promise<T | undefined>, opts: RetryOptions): Promise<T> {
  const clock = opts.clock ?? systemClock;
  const start = clock.now();
  let interval = opts.intervalMs ?? 100;
  let lastError: unknown;
  for (;;) {
    if (opts.signal?.aborted) throw abortReason(opts.signal);
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (clock.now() - start >= opts.timeoutMs) {
      const last = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${last}`, {
        cause: lastError,
      });
    }
    await clock.sleep(interval, opts.signal);
    interval = Math.min(interval * 1.5, opts.maxIntervalMs ?? 2000);
  }
}
