/** A local directory seen through the storage interface. */
import { createReadStream } from "node:fs";
import { open, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { coerceError } from "../../util/errors.js";
import { type Storage, type StorageCallOptions, StorageError, type StoredObject } from "../storage.js";
import type { LocalStorageConfig } from "./local-config.js";

function storageError(err: unknown, what: string): StorageError {
  const e = coerceError(err);
  const code = (e as NodeJS.ErrnoException).code ?? "EIO";
  return new StorageError(`${what}: ${code}`, code, undefined, { cause: e });
}

/** Files under a directory; keys are `/`-separated relative paths. Symbolic links are not followed. */
export class LocalStorage implements Storage {
  readonly type = "local";
  readonly name: string;
  readonly #root: string;

  constructor(name: string, cfg: LocalStorageConfig) {
    this.name = name;
    this.#root = cfg.path;
  }

  describe(key: string): string {
    return join(this.#root, key);
  }

  #path(key: string): string {
    // a key is data from a listing or a config, never a way out of the root
    if (key.split("/").some((part) => part === ".." || part === ".") || key.startsWith("/")) {
      throw new StorageError(`${this.name}: key ${JSON.stringify(key)} leaves the store`, "InvalidKey");
    }
    return join(this.#root, key);
  }

  async *list(prefix: string, opts: StorageCallOptions = {}): AsyncIterable<StoredObject> {
    // start at the deepest directory the prefix names; filter the rest by the prefix itself
    const slash = prefix.lastIndexOf("/");
    const startKey = slash >= 0 ? prefix.slice(0, slash + 1) : "";
    const found: StoredObject[] = [];
    const walk = async (dirKey: string): Promise<void> => {
      let entries: import("node:fs").Dirent[];
      try {
        entries = await readdir(dirKey ? this.#path(dirKey) : this.#root, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT" && dirKey === startKey) return;
        throw storageError(err, `${this.name}: cannot list ${this.describe(dirKey)}`);
      }
      for (const e of entries) {
        if (opts.signal?.aborted) return;
        const key = `${dirKey}${e.name}`;
        if (e.isDirectory()) {
          if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(`${key}/`);
        } else if (e.isFile() && key.startsWith(prefix)) {
          const s = await stat(join(this.#root, key));
          found.push({ key, sizeBytes: s.size, lastModified: s.mtime });
        }
      }
    };
    await walk(startKey);
    found.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
    yield* found;
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    try {
      const s = await stat(this.#path(key));
      return s.isFile() ? { key, sizeBytes: s.size, lastModified: s.mtime } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw storageError(err, `${this.name}: cannot stat ${this.describe(key)}`);
    }
  }

  async readRange(key: string, offset: number, length: number): Promise<Buffer> {
    try {
      const fh = await open(this.#path(key), "r");
      try {
        const buf = Buffer.alloc(length);
        const { bytesRead } = await fh.read(buf, 0, length, offset);
        return buf.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
    } catch (err) {
      if (err instanceof StorageError) throw err;
      throw storageError(err, `${this.name}: cannot read ${this.describe(key)}`);
    }
  }

  async openRead(key: string, opts: StorageCallOptions & { offset?: number } = {}): Promise<Readable> {
    const path = this.#path(key);
    const s = await this.stat(key);
    if (!s) throw new StorageError(`${this.name}: ${this.describe(key)} does not exist`, "ENOENT");
    return createReadStream(path, { start: opts.offset ?? 0, signal: opts.signal });
  }

  close(): void {}
}
