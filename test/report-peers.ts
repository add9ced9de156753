/** Real peers for the mail and alert tests: an SMTP server (smtp-server) and a webhook receiver, on 127.0.0.1. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ParsedMail, simpleParser } from "mailparser";
import { SMTPServer, type SMTPServerOptions } from "smtp-server";

/** A received message with what the server saw of the session. */
export interface Received {
  mail: ParsedMail;
  raw: Buffer;
  envelope: { from: string; to: string[] };
  secure: boolean;
  user?: string;
}

/** A running SMTP peer. */
export interface SmtpPeer {
  port: number;
  received: Received[];
  /** "accept", or refuse every message with a 4xx/5xx reply. */
  mode: "accept" | "refuse";
  close(): Promise<void>;
}

/** Starts an SMTP server on 127.0.0.1; `tls` enables STARTTLS with the given key and cert. */
export async function startSmtp(
  opts: { tls?: { key: Buffer; cert: Buffer }; users?: Record<string, string> } = {},
): Promise<SmtpPeer> {
  const peer = {
    port: 0,
    received: [] as Received[],
    mode: "accept" as "accept" | "refuse",
    close: async () => {},
  };
  const options: SMTPServerOptions = {
    logger: false,
    disableReverseLookup: true,
    authOptional: !opts.users,
    ...(opts.tls ? { key: opts.tls.key, cert: opts.tls.cert } : {}),
    disabledCommands: [...(opts.tls ? [] : ["STARTTLS"]), ...(opts.users ? [] : ["AUTH"])],
    onAuth(auth, _session, cb) {
      if (opts.users && opts.users[auth.username ?? ""] === auth.password)
        return cb(null, { user: auth.username });
      return cb(new Error("Invalid username or password"));
    },
    onMailFrom(_address, _session, cb) {
      if (peer.mode === "refuse") {
        const err = new Error("mailbox temporarily unavailable, try later") as Error & {
          responseCode: number;
        };
        err.responseCode = 451;
        return cb(err);
      }
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const raw = Buffer.concat(chunks);
        simpleParser(raw).then(
          (mail) => {
            peer.received.push({
              mail,
              raw,
              envelope: {
                from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
                to: session.envelope.rcptTo.map((r) => r.address),
              },
              secure: session.secure,
              ...(typeof session.user === "string" ? { user: session.user } : {}),
            });
            cb();
          },
          (err: Error) => cb(err),
        );
      });
    },
  };
  const server = new SMTPServer(options);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const addr = server.server.address();
  peer.port = typeof addr === "object" && addr ? addr.port : 0;
  peer.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return peer;
}

/** A self-signed certificate for 127.0.0.1 / localhost, made by openssl; `cert` doubles as the CA. */
export function selfSignedCert(): { key: Buffer; cert: Buffer; certFile: string } {
  const dir = mkdtempSync(join(tmpdir(), "attest-tls-"));
  const key = join(dir, "key.pem");
  const cert = join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ],
    { stdio: "ignore" },
  );
  return { key: readFileSync(key), cert: readFileSync(cert), certFile: cert };
}

/** A running webhook receiver. */
export interface WebhookPeer {
  url: string;
  bodies: Array<Record<string, unknown>>;
  /** HTTP status to answer with (500 simulates a broken receiver). */
  status: number;
  /** The next this-many requests are answered 503 whatever `status` says (a receiver restarting). */
  failNext: number;
  /** Requests received, answered or not. */
  hits: number;
  close(): Promise<void>;
}

/** Starts an HTTP server on 127.0.0.1 that records JSON POST bodies. */
export async function startWebhook(): Promise<WebhookPeer> {
  const peer: WebhookPeer = { url: "", bodies: [], status: 200, failNext: 0, hits: 0, close: async () => {} };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      peer.hits++;
      const status = peer.failNext > 0 ? 503 : peer.status;
      if (peer.failNext > 0) peer.failNext--;
      if (status < 300)
        peer.bodies.push(JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>);
      res.writeHead(status, { "content-type": "text/plain" }).end(status < 300 ? "ok" : "receiver broken");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const addr = server.address();
  peer.url = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}/hook`;
  peer.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return peer;
}
