/**
 * Taking a sandbox's socket directory back never leaves it unsearchable by the sandbox's
 * account: PostgreSQL chmods its socket right after bind(), and a directory it cannot enter at
 * that instant makes the server exit ("could not create any Unix-domain sockets"). A process of
 * that account chmods its socket in a tight loop while Attest takes the directory back a few
 * thousand times; not one chmod may be refused. (With chown before chmod, the window of two
 * syscalls where the directory was root's and 0700, this test saw about 1,700 refusals in 3,000
 * rounds, every time it ran.)
 */
import { spawn } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SOCKET_NAME, takeSocketDir } from "../src/runtimes/socket-dir.js";
import { isRoot, lookupUser } from "../src/util/os-user.js";

const ROUNDS = 3000;
const parent = mkdtempSync(join(tmpdir(), "attest-sockdir-"));
afterAll(() => rmSync(parent, { recursive: true, force: true }));

/** The sandbox account's side: listen on the socket, then chmod it until stdin ends; prints the refusals. */
const CHILD = `
const fs = require("node:fs");
const net = require("node:net");
const path = process.argv[1];
const server = net.createServer().listen(path, () => {
  process.stdout.write("ready\\n");
  let refused = 0, tries = 0, stop = false;
  process.stdin.on("end", () => { stop = true; });
  process.stdin.resume();
  const spin = () => {
    for (let i = 0; i < 2000 && !stop; i++) {
      tries++;
      try { fs.chmodSync(path, 0o777); } catch (e) { if (e.code === "EACCES") refused++; else throw e; }
    }
    if (stop) { process.stdout.write(JSON.stringify({ refused, tries }) + "\\n"); server.close(); }
    else setImmediate(spin);
  };
  spin();
});
`;

describe.runIf(isRoot())("socket directory hand-back", () => {
  it("stays searchable by the sandbox's account at every step", async () => {
    const user = lookupUser("attest-sandbox");
    expect(user, "the attest-sandbox account (scripts/ensure-system.sh makes it)").toBeDefined();
    const owner = { uid: user!.uid, gid: user!.gid };
    chmodSync(parent, 0o711);
    const dir = join(parent, "sock");
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, owner.uid, owner.gid);

    const child = spawn(process.execPath, ["-e", CHILD, join(dir, SOCKET_NAME)], {
      uid: owner.uid,
      gid: owner.gid,
      env: {},
      stdio: ["pipe", "pipe", "inherit"],
    });
    let out = "";
    const line = (n: number) =>
      new Promise<string>((resolve, reject) => {
        const look = () => {
          const lines = out.split("\n");
          if (lines.length > n) resolve(lines[n - 1]!);
        };
        child.stdout.on("data", (b: Buffer) => {
          out += b.toString();
          look();
        });
        child.on("exit", (code) => reject(new Error(`the account's process exited (${code}): ${out}`)));
        look();
      });
    expect(await line(1)).toBe("ready");
    for (let i = 0; i < ROUNDS; i++) {
      // the next server start: the directory is the account's again (as handOverSocketDir leaves it)
      chownSync(dir, owner.uid, owner.gid);
      chmodSync(dir, 0o700);
      expect(takeSocketDir(dir, owner)).toBe(true);
    }
    const result = line(2);
    child.stdin.end();
    const { refused, tries } = JSON.parse(await result) as { refused: number; tries: number };
    // the loop ran alongside the rounds, else the test proves nothing
    expect(tries).toBeGreaterThan(ROUNDS);
    expect(refused).toBe(0);
  });
});
