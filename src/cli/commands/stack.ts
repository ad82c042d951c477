/**
 * `upload-saga stack [--keep-data] [--data-dir DIR]`: a local Temporal + MinIO until Ctrl-C.
 *
 * Why it is built this way: it is the embedded stack the tests and the demo use (real servers
 * built from Go modules, free ports, bucket `uploads`), kept running for a developer who wants to
 * run `upload-saga worker` and `upload-saga upload` by hand. It prints the `export` lines for
 * exactly the variables those commands read. Ctrl-C stops both servers gracefully; a second
 * Ctrl-C exits at once (the servers die with the process, see src/embedded/exit-cleanup.ts).
 */
import { startEmbeddedStack } from '../../embedded';
import { note, out, type CliIo } from '../io';
import { waitForShutdownSignal } from '../signals';
import { embeddedStackEnv, exportLines } from '../stack-env';
import { labelled } from '../upload-report';

/** The bucket the stack creates. */
export const STACK_BUCKET = 'uploads';

/** Options of the `stack` command. */
export interface StackCommandOptions {
  /** Keep the generated temp data dir on exit. @default false */
  keepData?: boolean;
  /** Use (and never delete) this data dir; state survives restarts. @default a fresh temp dir */
  dataDir?: string;
}

/** Runs the command until SIGINT/SIGTERM. */
export async function runStack(options: StackCommandOptions, io: CliIo): Promise<void> {
  note(io, 'starting Temporal + MinIO (the first run builds both servers from Go modules, which takes several minutes)…');
  const stack = await startEmbeddedStack({
    buckets: [STACK_BUCKET],
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    keepDataDir: options.keepData ?? false,
    binaries: { logger: io.stderr },
  });
  const shutdown = waitForShutdownSignal();
  try {
    const dataKept = Boolean(options.dataDir || options.keepData);
    out(
      io,
      'embedded stack running',
      ...labelled([
        ['temporal', `${stack.temporal.address} (namespace ${stack.temporal.namespace})`],
        ['web ui', stack.temporal.uiUrl],
        ['s3', `${stack.s3.endpoint} (bucket ${STACK_BUCKET}, region ${stack.s3.region})`],
        ['minio console', stack.s3.consoleUrl],
        ['data', `${stack.dataDir}${dataKept ? ' (kept on exit)' : ' (deleted on exit)'}`],
      ]),
      '',
      'point a worker or the CLI at it:',
      ...exportLines(embeddedStackEnv(stack)),
      '',
      'then, in other terminals: upload-saga worker   and   upload-saga upload <file> --bucket uploads --key <key> --tenant <tenant>',
      'press Ctrl-C to stop',
    );
    const signal = await shutdown.received;
    note(io, `\n${signal}: stopping the stack…`);
  } finally {
    await stack.stop();
    shutdown.dispose();
  }
  note(io, 'stack stopped');
}
