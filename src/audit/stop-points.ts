/**
 * Test-only stop points: `ATTEST_TEST_STOP_AT=<point>:<SIGNAL>` makes the process send itself
 * SIGNAL when a drill reaches <point> (a phase such as `restore`, or `check:<name>`), then
 * waits until the drill's signal is aborted; `<point>:WAIT` only waits there (after saying so
 * on standard error) for a signal the test sends. An interrupt test can so stop a drill
 * exactly at each boundary instead of sleeping and hoping to land there. Unset, nothing happens.
 */
import { once } from "node:events";

/** The environment variable naming the stop point. */
export const STOP_AT_ENV = "ATTEST_TEST_STOP_AT";

/**
 * Called at each boundary of a drill; resolves once the drill has been stopped there, if asked
 * to. `signal`, when given, is the one whose abort ends the wait there (teardown no longer
 * listens to the drill's own signal, only to the run's).
 */
export type StopPoint = (point: string, signal?: AbortSignal) => Promise<void>;

/** The stop point hook of this process, or undefined when none is asked for. */
export function stopPointFromEnv(signal: AbortSignal, env = process.env): StopPoint | undefined {
  const spec = env[STOP_AT_ENV];
  if (!spec) return undefined;
  const at = spec.lastIndexOf(":");
  const point = spec.slice(0, at);
  const sig = spec.slice(at + 1) as NodeJS.Signals;
  if (at <= 0 || !/^(SIG[A-Z]+|WAIT)$/.test(sig)) {
    // a drill never throws: a mistyped test setting is said and ignored
    process.stderr.write(`attest: ignoring ${STOP_AT_ENV}=${spec}: expected <point>:<SIGNAL|WAIT>\n`);
    return undefined;
  }
  let fired = false;
  return async (reached, at = signal) => {
    if (fired || reached !== point) return;
    fired = true;
    const wait = sig === ("WAIT" as string);
    process.stderr.write(`attest: test stop point ${point}: ${wait ? "waiting" : `sending ${sig}`}\n`);
    const stopped = at.aborted ? Promise.resolve() : once(at, "abort");
    // signal handles do not keep Node's event loop alive; this timer does, and it bounds the
    // wait when nothing in this process turns the signal into an abort
    let guard: NodeJS.Timeout | undefined;
    const unheard = new Promise<never>((_, reject) => {
      const limit = wait ? 300_000 : 60_000;
      guard = setTimeout(() => reject(new Error(`${sig} at ${point}: the drill was not aborted`)), limit);
    });
    if (!wait) process.kill(process.pid, sig);
    try {
      await Promise.race([stopped, unheard]);
    } finally {
      clearTimeout(guard);
    }
  };
}
