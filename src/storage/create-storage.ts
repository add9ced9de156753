/** Opens a configured store. Each store type's adapter is loaded only when a store of it is used. */
import type { Storage } from "./storage.js";
import type { StorageConfig } from "./storage-config.js";

/** Opens the store `name` with its configuration; close it when done. */
export async function createStorage(name: string, cfg: StorageConfig): Promise<Storage> {
  switch (cfg.type) {
    case "local": {
      const { LocalStorage } = await import("./local/local-storage.js");
      return new LocalStorage(name, cfg);
    }
    case "s3": {
      // the AWS SDK is heavy: only a configuration with an s3 store loads it
      const { S3Storage } = await import("./s3/s3-storage.js");
      return new S3Storage(name, cfg);
    }
  }
}
