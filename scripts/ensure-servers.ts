/**
 * Makes sure the `temporal`, `minio`, `toxiproxy-server` and `jaeger` binaries exist (building them from Go
 * modules on first use) and prints their paths: `npx tsx scripts/ensure-servers.ts`.
 * toxiproxy is only used by the fault-injection suite (`npm run test:faults`), but CI builds it
 * here too, so a new machine shows that build in the log rather than inside the suite. Jaeger v2
 * is the OTLP collector the trace test (test/telemetry/trace.test.ts) exports to.
 *
 * Why a separate script: CI runs it as its own step before the tests, so the multi-minute first
 * build shows its progress in the CI log instead of inside vitest's global setup.
 */
import { ensureServerBinary, type ServerBinaryName } from '../src/embedded';

async function main(): Promise<void> {
  const names: readonly ServerBinaryName[] = ['temporal', 'minio', 'toxiproxy-server', 'jaeger'];
  for (const name of names) {
    const started = Date.now();
    const binaryPath = await ensureServerBinary(name);
    process.stdout.write(`${name}: ${binaryPath} (${((Date.now() - started) / 1000).toFixed(1)}s)\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}\n`);
  process.exitCode = 1;
});
