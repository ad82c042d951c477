/**
 * Makes sure server binaries exist (building them from Go modules on first use) and prints their
 * paths: `npx tsx scripts/ensure-servers.ts [name…]`, every server when no name is given.
 *
 * The servers: `temporal` (the dev server), `minio` and `versitygw` (the two S3 stores),
 * `temporal-server` and `temporal-sql-tool` (Temporal v1.29.1 on PostgreSQL), which the test
 * projects' global setups start; `jaeger` (the OTLP collector test/telemetry/trace.test.ts exports
 * to), `tusd` (the tus reference server the conformance tests compare with) and `compose-check`
 * (tools/compose-check, for test/compose.test.ts), which single test files start; and
 * `toxiproxy-server`, which only the fault-injection suite uses.
 *
 * Why a separate script: CI runs it beside its other steps, so a new machine's multi-minute builds
 * show their progress in the CI log rather than inside vitest, and CI can wait for the servers a
 * step needs and no more (see .ci/run: the global setups' servers before `npm test`, the others,
 * at low priority, while it runs).
 *
 * Two builds at a time: a first build spends much of its time downloading modules, which another
 * build's compiling overlaps; more than two would only share the same two cores. Names are built
 * in the order given, the largest first, so the short ones fill in behind them; `temporal-server`
 * comes after the Temporal CLI, whose compiled packages (the same server version) it partly reuses
 * from Go's build cache, and `temporal-sql-tool` after it (30 s then: 5 packages of its own).
 */
import { ensureServerBinary, SERVER_BINARIES, type ServerBinaryName } from '../src/embedded';

const PARALLEL_BUILDS = 2;

/** Every server, in build order. */
const ALL: readonly ServerBinaryName[] = [
  'temporal',
  'minio',
  'temporal-server',
  'versitygw',
  'temporal-sql-tool',
  'jaeger',
  'tusd',
  'toxiproxy-server',
  'compose-check',
];

function requestedServers(args: readonly string[]): ServerBinaryName[] {
  if (args.length === 0) return [...ALL];
  const unknown = args.filter((name) => !(name in SERVER_BINARIES));
  if (unknown.length > 0) throw new Error(`unknown server ${unknown.join(', ')}; known: ${ALL.join(', ')}`);
  return ALL.filter((name) => args.includes(name));
}

async function main(): Promise<void> {
  const queue = requestedServers(process.argv.slice(2));
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
