/** Route table types shared by the operation modules, and request-body validation helpers. */
import type { IncomingHttpHeaders } from "node:http";
import type { BackgroundTasks } from "./background-tasks.js";
import type { LoopDevices } from "./host-devices.js";
import { type ApiResponse, invalidParameter, OciApiError } from "./http-io.js";
import type { ResourceStore } from "./store.js";
import type { EmulatorSettings } from "./types.js";

/** What every operation may touch. */
export interface EmulatorCore {
  readonly store: ResourceStore;
  readonly tasks: BackgroundTasks;
  readonly loops: LoopDevices;
  readonly settings: EmulatorSettings;
  readonly stateDir: string;
  readonly deviceRoot: string;
}

/** One authenticated request, as an operation sees it. */
export interface RequestContext {
  /** Captured path segments, in pattern order. */
  params: string[];
  query: URLSearchParams;
  body: unknown;
  headers: IncomingHttpHeaders;
}

/** One API operation: method + path pattern (relative to `/20160918`). */
export interface Route {
  method: string;
  pattern: RegExp;
  operation: string;
  handle(ctx: RequestContext): Promise<ApiResponse> | ApiResponse;
}

/** The route that serves a request, with its captured path segments. */
export function matchRoute(
  routes: readonly Route[],
  method: string,
  path: string,
): { route: Route; params: string[] } | undefined {
  for (const route of routes) {
    if (route.method !== method) continue;
    const m = route.pattern.exec(path);
    if (m) return { route, params: m.slice(1).map((s) => decodeURIComponent(s)) };
  }
  return undefined;
}

/** The JSON request body as an object, or 400. */
export function bodyObject(body: unknown): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw invalidParameter("request body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

/** A required string field, or 400 MissingParameter. */
export function requiredString(body: Record<string, unknown>, key: string): string {
  const value = body[key];
  if (typeof value !== "string" || value === "") {
    throw new OciApiError(400, "MissingParameter", `missing or invalid parameter: ${key}`);
  }
  return value;
}

/** An optional string field, or 400 when present with another type. */
export function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw invalidParameter(`parameter ${key} must be a string`);
  return value;
}

/** An optional string map (freeform tags), or 400. */
export function optionalTags<T>(body: Record<string, unknown>, key: string): Record<string, T> {
  const value = body[key];
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value))
    throw invalidParameter(`parameter ${key} must be an object`);
  return { ...(value as Record<string, T>) };
}

/** A required query parameter, or 400 MissingParameter. */
export function requiredQuery(query: URLSearchParams, key: string): string {
  const value = query.get(key);
  if (!value) throw new OciApiError(400, "MissingParameter", `missing query parameter: ${key}`);
  return value;
}

/** Keeps items whose fields equal the given query parameters, for those present. */
export function filterByQuery<T extends object>(
  items: T[],
  query: URLSearchParams,
  keys: (keyof T & string)[],
): T[] {
  return items.filter((item) =>
    keys.every((key) => {
      const wanted = query.get(key);
      return wanted === null || String(item[key]) === wanted;
    }),
  );
}
