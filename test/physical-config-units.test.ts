/**
 * The pure parts of keeping a restored cluster inside its sandbox: which settings of a backup's
 * configuration are carried over (and which never are), how a link's target is judged without
 * following it, and how tablespace_map is read.
 */
import { describe, expect, it } from "vitest";
import { linkTarget, parseTablespaceMap } from "../src/restore/physical/contain-data-dir.js";
import {
  carriedFromConfig,
  carriedFromControlData,
  highest,
  validCarried,
} from "../src/restore/physical/server-config.js";
import { barmanPaths } from "../src/restore/tool/barman-confined.js";

describe("settings carried from a backup's configuration", () => {
  it("takes only the named settings, validated, last assignment winning", () => {
    const text = [
      "max_connections = 100",
      "max_connections = 250   # raised later",
      "MAX_WORKER_PROCESSES=16",
      "max_locks_per_transaction '128'",
      "max_wal_senders = 10MB",
      "max_prepared_transactions = -1",
      "wal_level = logical",
      "max_replication_slots = 99999999999",
    ].join("\n");
    expect(carriedFromConfig(text)).toEqual({
      max_connections: "250",
      max_worker_processes: "16",
      max_locks_per_transaction: "128",
      wal_level: "logical",
    });
  });

  it("ignores every path-bearing or library setting and every include directive", () => {
    const text = [
      "data_directory = '/some/other/cluster'",
      "hba_file = '/etc/shadow'",
      "ident_file = '/etc/shadow'",
      "config_file = '/x'",
      "external_pid_file = '/x'",
      "include 'a.conf'",
      "include_if_exists = '/tmp/canary-secret'",
      "include_dir 'conf.d'",
      "shared_preload_libraries = '/data/evil'",
      "session_preload_libraries = 'evil'",
      "local_preload_libraries = 'evil'",
      "jit_provider = '../../evil'",
      "dynamic_library_path = '/data'",
      "unix_socket_directories = '/tmp'",
      "listen_addresses = '*'",
      "archive_command = 'curl ...'",
    ].join("\n");
    expect(carriedFromConfig(text)).toEqual({});
  });

  it("never lowers wal_level and keeps numbers in PostgreSQL's range", () => {
    expect(validCarried("wal_level", "minimal")).toBeUndefined();
    expect(validCarried("wal_level", "replica")).toBeUndefined();
    expect(validCarried("wal_level", "'; shared_preload_libraries = 'x")).toBeUndefined();
    expect(validCarried("max_connections", "0")).toBeUndefined();
    expect(validCarried("max_connections", "262143")).toBe("262143");
    expect(validCarried("max_locks_per_transaction", "9")).toBeUndefined();
    expect(validCarried("shared_preload_libraries", "1")).toBeUndefined();
  });

  it("reads pg_controldata and keeps the highest of both sources", () => {
    const control = [
      "wal_level setting:                    replica",
      "max_connections setting:              300",
      "max_worker_processes setting:         8",
      "max_wal_senders setting:              10",
      "max_prepared_xacts setting:           0",
      "max_locks_per_xact setting:           64",
    ].join("\n");
    const fromControl = carriedFromControlData(control);
    expect(fromControl).toEqual({
      max_connections: "300",
      max_worker_processes: "8",
      max_wal_senders: "10",
      max_prepared_transactions: "0",
      max_locks_per_transaction: "64",
    });
    expect(highest({ max_connections: "250", max_locks_per_transaction: "128" }, fromControl)).toMatchObject({
      max_connections: "300",
      max_locks_per_transaction: "128",
    });
  });
});

describe("link targets are judged as text", () => {
  const data = "/tmp/attest-sandboxes/s1/data";
  const copied = "/backup/base/b1";
  it("inside the data directory, or in the copied original (whose copy is inside)", () => {
    expect(linkTarget(data, "pg_tblspc/16384", `${copied}/tblspc/ts1`, [{ from: copied, to: "." }])).toEqual({
      kind: "inside",
      rel: "tblspc/ts1",
    });
    expect(linkTarget(data, "pg_tblspc/16384", "../ts")).toEqual({ kind: "inside", rel: "ts" });
    expect(linkTarget(data, "pg_wal", `${data}/wal`)).toEqual({ kind: "inside", rel: "wal" });
    // a tool's own directory, moved into the data directory after it ran
    expect(
      linkTarget(data, "pg_tblspc/16390", "/tmp/s1-ts/ts2", [{ from: "/tmp/s1-ts", to: "attest_tool_ts" }]),
    ).toEqual({ kind: "inside", rel: "attest_tool_ts/ts2" });
  });

  it("outside: absolute elsewhere, or climbing out with ..", () => {
    expect(
      linkTarget(data, "pg_tblspc/16384", "/var/lib/postgresql/ts", [{ from: copied, to: "." }]),
    ).toEqual({
      kind: "outside",
      path: "/var/lib/postgresql/ts",
    });
    expect(linkTarget(data, "pg_wal", "../../../../etc")).toEqual({ kind: "outside", path: "/etc" });
    expect(linkTarget(data, "pg_wal", `${copied}-evil/x`, [{ from: copied, to: "." }])).toMatchObject({
      kind: "outside",
    });
  });
});

describe("tablespace_map", () => {
  it("reads OID and path, with PostgreSQL's backslash escapes", () => {
    expect(parseTablespaceMap("16384 /srv/ts one\n16390 /srv/a\\\nb\\\\c\n")).toEqual([
      { oid: "16384", path: "/srv/ts one" },
      { oid: "16390", path: "/srv/a\nb\\c" },
    ]);
    expect(parseTablespaceMap("")).toEqual([]);
  });
});

describe("what a confined barman recover sees", () => {
  it("its configuration read-only; barman_home, the lock and log directories writable", () => {
    const conf = [
      "; a comment",
      "[barman]",
      "barman_user = barman",
      "barman_home = /",
      "log_file = /tmp/barman.log",
      "barman_lock_directory: /tmp",
      "[pg]",
      "barman_home = /elsewhere",
    ].join("\n");
    expect(barmanPaths("/etc/barman.conf", conf)).toEqual({
      readOnly: ["/etc/barman.conf"],
      writable: ["/", "/tmp"],
    });
    expect(() => barmanPaths("/etc/barman.conf", "[barman]\nbarman_home = relative\n")).toThrow(
      /barman_home/,
    );
  });
});
