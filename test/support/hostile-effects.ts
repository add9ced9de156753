/**
 * What a hostile backup could do to the host, made observable: a loopback listener on the
 * port the payloads dial, canary files, processes left running, victim processes the
 * payloads try to kill, and secrets (a host file, an environment variable) they try to read.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** What fixtures/build-hostile.sh baked into the payloads (manifest.json). */
export interface HostileManifest {
  listenPort: number;
  prodPort: number;
  prodSocketDir: string;
  canaryDirs: string[];
  canaryName: string;
  hostSecretFile: string;
  lingerMarker: string;
  victimMarker: string;
  classes: Record<string, { what: string; refuse?: string }>;
}

/** A TCP listener on 127.0.0.1 that records every connection it accepts. */
export interface Listener {
  hits: string[];
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:`port`; rejects when the port is taken (rebuild the fixture). */
export function listen(port: number): Promise<Listener> {
  const hits: string[] = [];
  const server: Server = createServer((sock) => {
    hits.push(`${sock.remoteAddress}:${sock.remotePort}`);
    sock.destroy();
  });
  return new Promise((resolve, reject) => {
    server.once("error", (err) =>
      reject(new Error(`cannot listen on 127.0.0.1:${port} (baked into the hostile corpus)`, { cause: err })),
    );
    server.listen(port, "127.0.0.1", () =>
      resolve({ hits, close: () => new Promise<void>((r) => server.close(() => r())) }),
    );
  });
}

/** Canary files the payloads left on the host, by path. */
export function canaries(m: HostileManifest): string[] {
  return m.canaryDirs.flatMap((d) =>
    existsSync(d)
      ? readdirSync(d)
          .filter((n) => n.startsWith(m.canaryName))
          .map((n) => join(d, n))
      : [],
  );
}

/** Removes canaries (left by an earlier, uncontained run). */
export function clearCanaries(m: HostileManifest): void {
  for (const f of canaries(m)) rmSync(f, { force: true, recursive: true });
}

/** Host processes whose command line contains `marker`, as "pid cmdline". */
export function processesMatching(marker: string): Array<{ pid: number; cmdline: string }> {
  const found: Array<{ pid: number; cmdline: string }> = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, "utf8").replace(/\0/g, " ").trim();
      if (cmdline.startsWith(marker)) found.push({ pid: Number(name), cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Kills (SIGKILL) every process `processesMatching(marker)` finds; returns what it found. */
export function killMatching(marker: string): string[] {
  const found = processesMatching(marker);
  for (const p of found) {
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  return found.map((p) => `${p.pid} ${p.cmdline}`);
}

/** Long-running processes named `marker`, one per OS user, that a payload tries to kill. */
export interface Victims {
  alive(): string[];
  dead(): string[];
  stop(): void;
}

/** Starts one victim as each of `users` that exists. */
export function startVictims(marker: string, users: string[]): Victims {
  const kids: Array<{ user: string; child: ChildProcess }> = [];
  for (const user of users) {
    let ids: number[];
    try {
      ids = ["-u", "-g"].map((f) => Number(execFileSync("id", [f, user], { encoding: "utf8" }).trim()));
    } catch {
      continue;
    }
    const child = spawn("bash", ["-c", `exec -a ${marker} sleep 100000`], {
      uid: ids[0]!,
      gid: ids[1]!,
      cwd: "/",
      env: { PATH: "/usr/bin:/bin" },
      stdio: "ignore",
    });
    kids.push({ user, child });
  }
  const isAlive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
  return {
    alive: () => kids.filter((k) => isAlive(k.child)).map((k) => k.user),
    dead: () =>
      kids
        .filter((k) => !isAlive(k.child))
        .map((k) => `${k.user} (${k.child.signalCode ?? k.child.exitCode})`),
    stop: () => {
      for (const k of kids) if (isAlive(k.child)) k.child.kill("SIGKILL");
    },
  };
}

/** The secrets a payload hunts for: a world-readable host file and an environment variable. */
export interface Secrets {
  env: Record<string, string>;
  values: string[];
  remove(): void;
}

/** Writes the host secret file (mode 0644) and makes an environment secret for the CLI. */
export function plantSecrets(hostSecretFile: string): Secrets {
  const host = `ATTEST-HOST-SECRET-${randomBytes(12).toString("hex")}`;
  const env = `ATTEST-ENV-SECRET-${randomBytes(12).toString("hex")}`;
  writeFileSync(hostSecretFile, `${host}\n`, { mode: 0o644 });
  return {
    env: { ATTEST_TEST_SECRET: env, ATTEST_SMTP_PASSWORD: env },
    values: [host, env],
    remove: () => rmSync(hostSecretFile, { force: true }),
  };
}

/** Files under `dir` (recursively) whose content contains any of `needles`. */
export function filesContaining(dir: string, needles: string[]): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && st.size < 64 * 1024 * 1024) {
        const text = readFileSync(p, "latin1");
        if (needles.some((n) => text.includes(n))) hits.push(p);
      }
    }
  };
  walk(dir);
  return hits;
}

/** Host directories of docker sandboxes (under the OS temp dir) whose owner was process `pid`. */
export function dockerHostDirsOf(pid: number): string[] {
  return readdirSync(tmpdir())
    .filter((n) => n.startsWith("attest-docker-sandbox-"))
    .filter((n) => {
      try {
        const owner = JSON.parse(readFileSync(join(tmpdir(), n, "owner.json"), "utf8")) as Record<
          string,
          string
        >;
        return owner["attest.pid"] === String(pid);
      } catch {
        return false;
      }
    });
}

/**
 * Serialises runs of the hostile suite on this machine: canaries, victims, the listener port and
 * the production socket are host-wide, so a second run at once would see the first one's effects
 * (its confinement: none control above all). A lock directory holds the owner's pid; a dead
 * owner's lock is taken over.
 */
export async function acquireRunLock(dir: string, timeoutMs: number): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, "pid"), String(process.pid));
      return () => rmSync(dir, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let owner = Number.NaN;
    try {
      owner = Number(readFileSync(join(dir, "pid"), "utf8"));
    } catch {
      // being written right now
    }
    if (Number.isInteger(owner) && !pidAlive(owner)) rmSync(dir, { recursive: true, force: true });
    else if (Date.now() > deadline) throw new Error(`another hostile suite run (pid ${owner}) holds ${dir}`);
    else await new Promise((r) => setTimeout(r, 1000));
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
