/**
 * The storage layer: where backup files live (a local directory, an S3 bucket, …), read-only.
 * Sources and restorers read backups through this interface instead of host paths, so a family
 * works the same over every store, and a new kind of store is one folder under src/storage/.
 */
import type { Readable } from "node:stream";

/** One stored object (a file, for a local store). */
export interface StoredObject {
  /** Key relative to the store's root (`/`-separated, never starting with `/`). */
  key: string;
  sizeBytes: number;
  lastModified: Date;
  /** The store's version tag of the content (S3 ETag without quotes); absent for local files. */
  etag?: string;
}

/** Options every storage call takes. */
export interface StorageCallOptions {
  signal?: AbortSignal;
}

/** Options of a listing. */
export interface ListOptions extends StorageCallOptions {
  /** Told of each object the listing leaves out, and why (see unlisted-keys.ts). */
  onUnlisted?: (key: string, why: string) => void;
}

/** A read-only view of a store of backup files. */
export interface Storage {
  /** The configured store's name. */
  readonly name: string;
  /** The kind of store (`local`, `s3`). */
  readonly type: string;
  /** Where a key lives, for records and messages (`s3://bucket/key`, `/backups/key`). */
  describe(key: string): string;
  /** Every object whose key starts with `prefix`, in key order, page by page. */
  list(prefix: string, opts?: ListOptions): AsyncIterable<StoredObject>;
  /** The object's size, date and tag; undefined when it does not exist. */
  stat(key: string, opts?: StorageCallOptions): Promise<StoredObject | undefined>;
  /** Up to `length` bytes from `offset` (fewer at the object's end). */
  readRange(key: string, offset: number, length: number, opts?: StorageCallOptions): Promise<Buffer>;
  /** The object's content from `offset` (default 0) to its end, as a stream. */
  openRead(key: string, opts?: StorageCallOptions & { offset?: number }): Promise<Readable>;
  /** Releases connections; the store is unusable afterwards. */
  close(): void;
}

/** A store refused or failed a request; `code` is the store's own (S3 error code, errno). */
export class StorageError extends Error {
  override readonly name = "StorageError";
  constructor(
    message: string,
    readonly code: string,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** True for a StorageError saying the object or bucket does not exist. */
export function isNotFound(err: unknown): boolean {
  return err instanceof StorageError && ["NoSuchKey", "NotFound", "ENOENT"].includes(err.code);
}
