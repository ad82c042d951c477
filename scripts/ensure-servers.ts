/**
 * Makes sure the `temporal`, `minio`, `versitygw`, `temporal-server`, `temporal-sql-tool`, `toxiproxy-server`,
 * `jaeger`, `tusd` and `compose-check` binaries exist (building them from Go modules on first use)
 * and prints their paths: `npx tsx scripts/ensure-servers.ts`.
 * toxiproxy is only used by the fault-injection suite (`npm run test:faults`), but CI builds it
 * here too, so a new machine shows that build in the log rather than inside the suite. Jaeger v2
 * is the OTLP collector the trace test (test/telemetry/trace.test.ts) exports to; tusd is the tus
 * reference server the conformance test (test/gateway/tus-conformance.test.ts) compares with;
 * versitygw is the second S3 store (`UPLOAD_SAGA_TEST_STORE=versitygw`, the `versitygw` vitest project).
 * `temporal-server` and `temporal-sql-tool` (Temporal v1.29.1) run the tests on PostgreSQL
 * (test/temporal-postgres.test.ts); compose-check (tools/compose-check) loads docker-compose.yml
 * with compose-go for test/compose.test.ts.
 *
 * Why a separate script: CI runs it as its own step before the tests, so the multi-minute first
 * build shows its progress in the CI log instead of inside vitest's global setup.
 *
 * Two builds at a time: a first build spends much of its time downloading modules, which another
 * build's compiling overlaps; more than two would only share the same two cores. The largest
 * builds start first, so the short ones fill in behind them; `temporal-server` comes after the
 * Temporal CLI, whose compiled packages (the same server version) it partly reuses from Go's build
 * cache, and `temporal-sql-tool` after it (30 s then: 5 packages of its own).
 */
import { ensureServerBinary, type ServerBinaryName } from '../src/embedded';

const PARALLEL_BUILDS = 2;

async function main(): Promise<void> {
  const queue: ServerBinaryName[] = [
    'temporal',
    'minio',
    'jaeger',
    'temporal-server',
    'tusd',
    'versitygw',
    'temporal-sql-tool',
    'toxiproxy-server',
    'compose-check',
  ];
  const lane = async (): Promise<void> => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      const started = Date.now();
      const binaryPath = await ensureServerBinary(name);
      process.stdout.write(`${name}: ${binaryPath} (${((Date.now() - started) / 1000).toFixed(1)}s)\n`);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL_BUILDS }, lane));
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}\n`);
  process.exitCode = 1;
});
