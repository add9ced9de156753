/**
 * How a `pgbackrest info` status 99 is read (S3-9): the verifier's store problems become a short
 * reason naming the S3 code or the connect/TLS error, never the response pgBackRest echoes (which
 * can carry the signed request and its session token); the backup's own problems are not taken.
 */
import { describe, expect, it } from "vitest";
import { storeAccessProblem } from "../src/sources/pgbackrest/pgbackrest-info.js";

/** An info document for stanza demo whose one repository says `message`. */
const info = (message: string, code = 99) =>
  JSON.stringify([
    {
      name: "demo",
      status: { code, message: code === 99 ? "other" : "missing stanza path" },
      repo: [{ key: 1, cipher: "none", status: { code, message } }],
      backup: [],
      archive: [],
      db: [],
    },
  ]);

describe("pgbackrest info status 99", () => {
  it("names the S3 code and HTTP status only, not the echoed canonical request", () => {
    const message = [
      "[ProtocolError] HTTP request failed with 403 (Forbidden):",
      "*** Path/Query ***:",
      "GET /?list-type=2&prefix=pgbr%2Farchive%2Fdemo%2F",
      "*** Response Content ***:",
      '<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><CanonicalRequest>GET / x-amz-security-token:SESSION-TOKEN-SECRET</CanonicalRequest></Error>',
    ].join("\n");
    const why = storeAccessProblem(info(message), "demo");
    expect(why).toBe("repo1: the store answered SignatureDoesNotMatch (HTTP 403 Forbidden)");
  });

  it("keeps the first line of a connect or TLS error", () => {
    expect(
      storeAccessProblem(
        info(
          "[HostConnectError] unable to connect to '127.0.0.1:9 (127.0.0.1)': [111] Connection refused\nmore",
        ),
        "demo",
      ),
    ).toBe(
      "repo1: [HostConnectError] unable to connect to '127.0.0.1:9 (127.0.0.1)': [111] Connection refused",
    );
    expect(
      storeAccessProblem(
        info("[CryptoError] unable to verify certificate presented by 'localhost:443'"),
        "demo",
      ),
    ).toContain("[CryptoError] unable to verify certificate");
  });

  it("leaves a missing stanza or an unreadable backup to the backup's verdict", () => {
    expect(storeAccessProblem(info("missing stanza path", 1), "demo")).toBeUndefined();
    expect(
      storeAccessProblem(
        info("[FileMissingError] unable to open missing file 'archive.info' for read"),
        "demo",
      ),
    ).toBeUndefined();
    expect(storeAccessProblem("not json", "demo")).toBeUndefined();
  });
});
