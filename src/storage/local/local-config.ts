/** Configuration of a `local` store: a directory on this host. */
import { existsSync, statSync } from "node:fs";
import { z } from "zod";

/** A directory whose files are the store's objects (keys are paths relative to it). */
export const localStorageSchema = z
  .object({
    type: z.literal("local"),
    path: z.string().refine((p) => existsSync(p) && statSync(p).isDirectory(), {
      message: "directory does not exist",
    }),
  })
  .strict();

/** Resolved local store configuration. */
export type LocalStorageConfig = z.infer<typeof localStorageSchema>;
