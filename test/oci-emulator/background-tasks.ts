/** Delayed lifecycle transitions that the emulator can cancel and wait for when it closes. */
import { coerceError } from "./http-io.js";

/** Runs tasks after a delay; a failing task becomes a recorded problem, never an exception. */
export class BackgroundTasks {
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #running = new Set<Promise<void>>();
  readonly #onError: (message: string) => void;
  #closed = false;

  constructor(onError: (message: string) => void) {
    this.#onError = onError;
  }

  /** Runs `task` after `delayMs`, unless the emulator closes first. */
  after(delayMs: number, label: string, task: () => Promise<void> | void): void {
    if (this.#closed) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.run(label, task);
    }, delayMs);
    this.#timers.add(timer);
  }

  /** Runs `task` now in the background and tracks it until it settles. */
  run(label: string, task: () => Promise<void> | void): void {
    if (this.#closed) return;
    const running = (async () => task())().catch((err: unknown) => {
      this.#onError(`${label}: ${coerceError(err).message}`);
    });
    this.#running.add(running);
    void running.finally(() => this.#running.delete(running));
  }

  /** Cancels pending transitions and waits for the ones already running. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }
}
