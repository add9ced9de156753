// Standalone probe: can testcontainers 11 start the offline sandbox image with host
// networking, and how fast? Not part of Attest; informs the Docker runtime design.
//
//   node docker/probe-testcontainers.mjs [log|cmd|health] [image] [runs]
//
// log    = Wait.forLogMessage(/database system is ready to accept connections/)  (default)
// cmd    = Wait.forSuccessfulCommand("pg_isready -h 127.0.0.1 -p PORT")        (docker exec polling)
// health = Docker HEALTHCHECK running pg_isready + Wait.forHealthCheck()
process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= "127.0.0.1";

import net from "node:net";
import pg from "pg";
import { GenericContainer, Wait } from "testcontainers";

const mode = process.argv[2] ?? "log";
const image = process.argv[3] ?? "attest/postgres:15";
const runs = Number(process.argv[4] ?? 1);

async function probeOnce(run) {
  // A free loopback port (small race window between close and postgres binding it).
  const port = await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });

  // Initdb + postgres in the foreground; no dependence on any image entrypoint.
  const script =
    "initdb -D /sandbox/data -A trust -U postgres -N --encoding=UTF8 --locale=C.UTF-8 >/dev/null" +
    ` && exec postgres -D /sandbox/data -c listen_addresses=127.0.0.1 -c port=${port}` +
    " -c unix_socket_directories=/tmp";
  const ready = `pg_isready -q -h 127.0.0.1 -p ${port}`;

  let container = new GenericContainer(image)
    .withNetworkMode("host") // no withExposedPorts(): there is no port mapping with host networking
    .withEntrypoint(["sh", "-c"])
    .withCommand([script])
    .withUser("postgres")
    .withLabels({ "attest.test": "1", "attest.probe": "testcontainers" })
    .withStartupTimeout(60_000);

  if (mode === "log") {
    container = container.withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/));
  } else if (mode === "cmd") {
    container = container.withWaitStrategy(Wait.forSuccessfulCommand(ready));
  } else if (mode === "health") {
    container = container
      // interval/timeout in ms; testcontainers converts them to ns for the Docker API.
      .withHealthCheck({ test: ["CMD-SHELL", ready], interval: 100, timeout: 2_000, retries: 300 })
      .withWaitStrategy(Wait.forHealthCheck());
  } else {
    console.error(`unknown wait mode ${mode} (log|cmd|health)`);
    process.exit(2);
  }

  const t0 = performance.now();
  const started = await container.start();
  const startMs = Math.round(performance.now() - t0);
  let ok = false;
  try {
    const client = new pg.Client({ host: "127.0.0.1", port, user: "postgres", database: "postgres" });
    const t1 = performance.now();
    await client.connect();
    const { rows } = await client.query("select 1 as one");
    await client.end();
    ok = rows[0].one === 1;
    console.log(
      JSON.stringify({
        run,
      mode,
        image,
        port,
        containerId: started.getId().slice(0, 12),
        startMs,
        firstQueryMs: Math.round(performance.now() - t1),
        select1: rows[0].one,
      }),
    );
  } finally {
    const t2 = performance.now();
    await started.stop({ timeout: 10_000 }); // testcontainers removes the container on stop
    console.log(JSON.stringify({ stopMs: Math.round(performance.now() - t2) }));
  }
  return ok;
}

let allOk = true;
for (let run = 1; run <= runs; run++) allOk = (await probeOnce(run)) && allOk;
process.exit(allOk ? 0 : 1);
