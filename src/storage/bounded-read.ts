/**
 * An object's content read no further than its known size. A store that sends more than the
 * object has (an endless body) would otherwise fill whatever the bytes are written to until the
 * drill's timeout; a store that fails mid-object must not look like a short object (which would
 * be the backup's fault). Every fetch of a backup's object into a sandbox reads through this.
 */
import { type Readable, Transform } from "node:stream";
import { coerceError } from "../util/errors.js";
import type { Storage } from "./storage.js";

/** A bounded read under way: the stream to consume, and what it has seen so far. */
export interface BoundedRead {
  /** The object's bytes; errors with `failure()` when the store fails or sends too much. */
  readonly stream: Readable;
  /** Bytes passed on so far. */
  bytes(): number;
  /** Why the read broke off (the store failed, or sent more than `sizeBytes`); undefined while it holds. */
  failure(): Error | undefined;
}

/** Opens `key` (of `sizeBytes` bytes) for reading; `onBytes` hears the running count. */
export async function openBoundedRead(
  storage: Storage,
  key: string,
  sizeBytes: number,
  opts: { signal?: AbortSignal; onBytes?: (bytes: number) => void } = {},
): Promise<BoundedRead> {
  const body = await storage.openRead(key, opts.signal ? { signal: opts.signal } : {});
  let bytes = 0;
  let broken: Error | undefined;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (bytes > sizeBytes) {
        broken ??= new Error(`the store sent more than the ${sizeBytes} bytes ${storage.describe(key)} has`);
        body.destroy();
        done(broken);
        return;
      }
      opts.onBytes?.(bytes);
      done(null, chunk);
    },
  });
  body.on("error", (err) => {
    broken ??= coerceError(err);
    stream.destroy(broken);
  });
  body.pipe(stream);
  return { stream, bytes: () => bytes, failure: () => broken };
}
