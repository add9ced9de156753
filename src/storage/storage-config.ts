/** The top-level `storage:` map: named stores that sources share. One schema per store type. */
import { z } from "zod";
import { localStorageSchema } from "./local/local-config.js";
import { s3StorageSchema } from "./s3/s3-config.js";

/** One store; the `type` picks its folder under src/storage/. */
export const storageSchema = z.discriminatedUnion("type", [localStorageSchema, s3StorageSchema]);

/** One resolved store configuration. */
export type StorageConfig = z.infer<typeof storageSchema>;

/** Named stores. */
export const storageMapSchema = z.record(
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "a store name is letters, digits, _ . -"),
  storageSchema,
);

/** The store types this build knows. */
export const STORAGE_TYPES = storageSchema.options.map((o) => o.shape.type.value);
