/** The header of real plain dumps (fixtures/build-dumps.sh headers/, plain/): names and zones. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { dumpDirSourceSchema } from "../src/sources/dump-dir/dump-dir-config.js";
import { DumpDirSource } from "../src/sources/dump-dir/dump-dir-source.js";
import { parsePlainHeader, zoneOffsetMinutes } from "../src/sources/dump-dir/plain-header.js";
import { silentLogger } from "../src/util/log.js";
import { DUMPS } from "./support/cli.js";

const head = (rel: string) => readFileSync(join(DUMPS, rel)).subarray(0, 16384);

describe("parsePlainHeader on real pg_dump output", () => {
  it("reads a -C dump's database name that needs quoting whole", () => {
    expect(parsePlainHeader(head("headers/odd_name.sql"))?.dbname).toBe('my "odd" db ü');
  });

  it("reads the database of a -C dump whose name pg_dump writes as a conninfo", () => {
    expect(parsePlainHeader(head("plain/sales-eu_20261120T0300.sql"))?.dbname).toBe("sales-eu");
  });

  it("reads 'Started on' in the dumping host's zone (TZ=America/New_York), not as UTC", () => {
    const [before, after] = readFileSync(join(DUMPS, "headers/verbose_ny.epoch"), "utf8")
      .trim()
      .split(" ")
      .map(Number);
    const started = parsePlainHeader(head("headers/verbose_ny.sql"))?.startedAt;
    expect(started).toBeDefined();
    const epoch = started!.getTime() / 1000;
    expect(epoch).toBeGreaterThanOrEqual(before! - 1);
    expect(epoch).toBeLessThanOrEqual(after! + 1);
  });

  it.each([
    ["EST", -300],
    ["CEST", 120],
    ["UTC", 0],
    ["+03", 180],
    ["-0530", -330],
    ["XYZT", undefined],
  ])("knows the offset of %s", (zone, minutes) => {
    expect(zoneOffsetMinutes(zone)).toBe(minutes);
  });

  it("tells a full pg_dumpall file from a --globals-only one", () => {
    expect(parsePlainHeader(head("headers/cluster/all.sql"))).toMatchObject({
      kind: "cluster",
      databases: true,
    });
    expect(parsePlainHeader(head("good/globals.sql"))?.databases).toBeUndefined();
  });
});

describe("dump-dir listing of pg_dumpall output", () => {
  it("lists a full pg_dumpall file as a backup of the cluster, its series named after the file", async () => {
    const source = new DumpDirSource(
      dumpDirSourceSchema.parse({ name: "all", type: "dump-dir", path: join(DUMPS, "headers/cluster") }),
    );
    const [b, ...more] = await source.list({ logger: silentLogger });
    expect(more).toEqual([]);
    expect(b).toMatchObject({ id: "all.sql", series: "all", format: "plain", family: "logical" });
    expect(b!.detail).toMatchObject({
      kind: "dump",
      scope: "cluster",
      clusterDatabases: true,
      seriesFrom: "cluster file name",
    });
    expect(await source.inspect()).toEqual([]);
  });
});
