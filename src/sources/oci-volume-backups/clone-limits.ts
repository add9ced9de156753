/** Caps on what one source may clone in a run: clones alive at once, and GB cloned in total. */
import { VerifierError } from "../../util/errors.js";
import { abortReason } from "../../util/retry.js";

/** A held clone slot; release it once the clone is deleted (or was never made). */
export type ReleaseSlot = () => void;

/** Counts clones of one source in this process. */
export class CloneLimits {
  readonly #maxConcurrent: number;
  readonly #maxGb: number | undefined;
  readonly #waiters: Array<() => void> = [];
  #active = 0;
  #clonedGb = 0;

  constructor(maxConcurrent: number, maxGb?: number) {
    this.#maxConcurrent = maxConcurrent;
    this.#maxGb = maxGb;
  }

  /** GB reserved so far in this run. */
  get clonedGb(): number {
    return this.#clonedGb;
  }

  /** Waits for a free slot, then reserves `sizeGb` of the run's budget; over budget throws. */
  async acquire(sizeGb: number, what: string, signal?: AbortSignal): Promise<ReleaseSlot> {
    this.#checkBudget(sizeGb, what);
    while (this.#active >= this.#maxConcurrent) {
      await new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(abortReason(signal));
        const wake = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        const onAbort = () => {
          const i = this.#waiters.indexOf(wake);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(abortReason(signal!));
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        this.#waiters.push(wake);
      });
    }
    // another clone may have used the budget while this one waited
    this.#checkBudget(sizeGb, what);
    this.#active++;
    this.#clonedGb += sizeGb;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#active--;
      this.#waiters.shift()?.();
    };
  }

  #checkBudget(sizeGb: number, what: string): void {
    if (this.#maxGb === undefined || this.#clonedGb + sizeGb <= this.#maxGb) return;
    throw new VerifierError(
      `cloning ${what} (${sizeGb} GB) would exceed limits.max_cloned_gb (${this.#maxGb} GB; ${this.#clonedGb} GB cloned in this run already)`,
    );
  }
}
