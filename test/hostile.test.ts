/**
 * Containment contract (issue 10): every backup of the hostile corpus (fixtures/build-hostile.sh)
 * is drilled by the real CLI in every runtime, and none of it may reach the host, the network
 * or another server: no canary file, no connection to a loopback listener, no row in the
 * "production" server, no killed host process, no process left running, no secret in any
 * output, every drill over by its timeout + 30 s, nothing left behind. What pg_dump never
 * writes is refused up front with `fail`; a contained payload may well pass.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResult } from "../src/model.js";
import { localSandboxesOf, ROOT, workspace } from "./support/cli.js";
import { attestBounded, type BoundedResult } from "./support/hostile-cli.js";
import {
  acquireRunLock,
  canaries,
  clearCanaries,
  dockerHostDirsOf,
  filesContaining,
  type HostileManifest,
  killMatching,
  type Listener,
  listen,
  plantSecrets,
  type Secrets,
  startVictims,
  type Victims,
} from "./support/hostile-effects.js";
import { type ProdServer, startProd } from "./support/hostile-prod.js";
import { leftovers, selectedRuntimes } from "./support/runtimes.js";

const HOSTILE = join(ROOT, "fixtures", "generated", "hostile");
const TIMEOUT_S = 60;
const BOUND_MS = (TIMEOUT_S + 30) * 1000;

/** What the preflight must say when it refuses a file pg_dump never writes. */
const REFUSED: Record<string, RegExp> = {
  connectbang: /meta-command \\(connect|!)/,
  connectconninfo: /\\connect/,
  toc: /statement pg_dump never writes \(COPY public\.t \(id\) FROM PROGRAM/,
  bomb: /line \d+ is longer than/,
};
/** Backups whose payload stalls the restore: the drill must end by its timeout, not pass. */
const STALLING = new Set(["sleepindex"]);
/**
 * Backups whose verdict is not asserted: `sleep`'s event trigger may never fire (Attest keeps
 * them from firing); `sockswap` may pass (its links cannot be made) or end `error` (Attest
 * refuses a socket that is not the sandbox's).
 */
const ANY_VERDICT = new Set(["sleep", "sockswap"]);
/** Every backup of the corpus. */
const CORPUS = [
  "index_20261120T0300.dump",
  "indexplain_20261120T0300.sql",
  "checkfn_20261120T0300.dump",
  "matview_20261120T0300.dump",
  "event_20261120T0300.dump",
  "dblink_20261120T0300.dump",
  "searchpath_20261120T0300.sql",
  "sleep_20261120T0300.dump",
  "sleepindex_20261120T0300.dump",
  "sockswap_20261120T0300.sql",
  "amhijack_20261120T0300.dump",
  "connectbang_20261120T0300.sql",
  "connectconninfo_20261120T0300.sql",
  "toc_20261120T0300.dump",
  "bomb_20261120T0300.sql.gz",
];

/** OS users a payload might share a uid with, one victim process each. */
const VICTIM_USERS = ["postgres", "attest-sandbox"];

let manifest: HostileManifest;
let listener: Listener;
let prod: ProdServer;
let victims: Victims;
let secrets: Secrets;
let unlock: (() => void) | undefined;
const dirs: string[] = [];

beforeAll(async () => {
  // host-wide, not per checkout or test run (each run has a TMPDIR of its own): canaries,
  // victims, ports and the production socket are the host's, in /tmp itself
  unlock = await acquireRunLock("/tmp/attest-hostile-suite.lock", 850_000);
  execFileSync("bash", [join(ROOT, "fixtures", "build-hostile.sh"), HOSTILE], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  manifest = JSON.parse(readFileSync(join(HOSTILE, "manifest.json"), "utf8")) as HostileManifest;
  clearCanaries(manifest);
  killMatching(manifest.lingerMarker);
  listener = await listen(manifest.listenPort);
  prod = await startProd(manifest.prodPort, manifest.prodSocketDir);
  victims = startVictims(manifest.victimMarker, VICTIM_USERS);
  secrets = plantSecrets(manifest.hostSecretFile);
}, 900_000);

afterAll(async () => {
  victims?.stop();
  await prod?.stop();
  await listener?.close();
  secrets?.remove();
  if (manifest) {
    clearCanaries(manifest);
    killMatching(manifest.lingerMarker);
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  unlock?.();
});

function classOf(id: string): string {
  return id.replace(/_\d{8}T\d{4}\..*$/, "");
}

function sandboxYaml(runtime: string, extra = ""): string {
  if (runtime === "docker")
    return `sandbox: { runtime: docker, timeout: ${TIMEOUT_S}s${extra}, docker: { image: "attest/postgres:{major}", pull: false } }`;
  return `sandbox: { runtime: local, timeout: ${TIMEOUT_S}s${extra} }`;
}

/** What one drill of a hostile backup did, observed from the host. */
interface Observed {
  r: BoundedResult;
  detail: string;
  canaries: string[];
  lingering: string[];
  hits: string[];
  rows: string[];
  prodSessions: string[];
  leaked: string[];
}

/** Drills backup `id` through the CLI and collects (then clears) every effect it had. */
async function drill(runtime: string, id: string, extraSandbox = ""): Promise<Observed> {
  const ws = workspace(
    (dir) => `${sandboxYaml(runtime, extraSandbox)}
sources:
  - name: hostile
    type: dump-dir
    path: ${HOSTILE}/corpus
history: { csv: ${dir}/reports/history.csv }
reports: { dir: ${dir}/reports, pdf: false }
`,
  );
  dirs.push(ws.dir);
  const r = await attestBounded(
    // debug logs too: whatever Attest reads from the sandbox may end up there
    [
      "drill",
      "--config",
      ws.config,
      "--source",
      "hostile",
      "--backup",
      id,
      "--json",
      "--no-mail",
      "--verbose",
    ],
    secrets.env,
    BOUND_MS,
  );
  // each effect is cleared once seen, so the next backup is judged on its own
  const seen = canaries(manifest);
  clearCanaries(manifest);
  return {
    r,
    detail: `exit ${r.code}, ${Math.round(r.elapsedMs / 1000)} s: ${r.stdout.slice(0, 600)} ${r.stderr.slice(-1500)}`,
    canaries: seen,
    lingering: killMatching(manifest.lingerMarker),
    hits: listener.hits.splice(0),
    rows: await prod.pwned(),
    prodSessions: prod.socketConnections(),
    leaked: [
      ...(secrets.values.some((s) => r.stdout.includes(s) || r.stderr.includes(s)) ? ["stdout/stderr"] : []),
      ...filesContaining(ws.dir, secrets.values),
    ],
  };
}

function parse(o: Observed): RunResult {
  try {
    return JSON.parse(o.r.stdout) as RunResult;
  } catch {
    throw new Error(`stdout is not one JSON document; ${o.detail}`);
  }
}

describe.each(selectedRuntimes())("hostile corpus in the %s runtime", (runtime) => {
  it.each(CORPUS)("%s has no effect outside its sandbox", async (id) => {
    expect(Object.keys(manifest.classes), "the corpus holds this backup").toContain(id);
    const o = await drill(runtime, id);
    expect(o.r.overran, `the drill did not end within timeout + 30 s; ${o.detail}`).toBe(false);
    expect(o.canaries, "canary files on the host").toEqual([]);
    expect(o.hits, "connections to the loopback listener").toEqual([]);
    expect(o.rows, "rows written into the production server").toEqual([]);
    expect(o.prodSessions, "sessions on the production server through its socket").toEqual([]);
    expect(prod.alive(), "the production server still runs").toBe(true);
    expect(victims.dead(), "host processes killed by the payload").toEqual([]);
    expect(o.lingering, "processes left running after the drill").toEqual([]);
    expect(o.leaked, "secret text in an output or record").toEqual([]);

    const doc = parse(o);
    expect(leftovers(runtime, doc.run.id), "sandboxes left behind").toEqual([]);
    expect(
      [...localSandboxesOf(o.r.pid), ...dockerHostDirsOf(o.r.pid)],
      "sandbox directories left behind",
    ).toEqual([]);
    expect(doc.drills, o.detail).toHaveLength(1);
    const d = doc.drills[0]!;
    const cls = classOf(id);
    const refused = REFUSED[cls];
    if (refused) {
      expect(d.verdict, `${id}: ${d.reason}`).toBe("fail");
      expect(d.reason).toMatch(refused);
    } else {
      // a sandbox ran it: the record says how it was confined, and it was
      expect(d.confinement, "the drill record states the confinement").toBeTruthy();
      expect(d.confinement).not.toMatch(/^none/);
    }
    if (STALLING.has(cls)) {
      expect(d.verdict, `${id}: ${d.reason}`).toMatch(/^(fail|error)$/);
    } else if (!refused && !ANY_VERDICT.has(cls)) {
      // the restore went through, so the payload ran; contained, it changed nothing a check sees
      expect(d.verdict, `${id}: ${d.reason} ${JSON.stringify(d.checks)}`).toMatch(/^(pass|warn)$/);
    }
  });
});

// The control: the same probes do see a payload that runs unconfined. Without it, a probe that
// silently saw nothing (a wrong port, a canary path the payload cannot write) would pass above.
describe("the probes, against a drill run with sandbox.confinement: none", () => {
  it("see the canaries, the connection and the processes an unconfined payload leaves", async () => {
    const o = await drill("local", "index_20261120T0300.dump", ", confinement: none");
    expect(o.r.overran, o.detail).toBe(false);
    expect(o.canaries.length, o.detail).toBeGreaterThan(0);
    expect(o.hits.length, o.detail).toBeGreaterThan(0);
    expect(o.lingering.length, o.detail).toBeGreaterThan(0);
    expect(parse(o).drills[0]?.confinement, "the record states the opt-out").toMatch(/^none/);
    // the payload kills every victim its uid may signal; start them again for whatever follows
    victims.stop();
    victims = startVictims(manifest.victimMarker, VICTIM_USERS);
  });
});
