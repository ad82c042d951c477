/**
 * The `upload-saga` command line: command wiring only.
 *
 * Why it is built this way: commander parses and documents the options; each command lives in
 * its own module under commands/ and just throws on failure; `describeCliError` (errors.ts) turns
 * any error into readable lines and an exit code in one place: 0 done, 1 failed, 2 invalid command
 * line or upload request (nothing started), 130 interrupted. Run it with `node bin/upload-saga.cjs`
 * (what `npx upload-saga` runs) or `tsx src/cli/main.ts`.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CONFIG_VARIABLES } from '../config';
import { CHECKSUM_ALGORITHMS } from '../upload/request';
import { BATCH_MODES, type BatchOutcomeKind } from '../batch/batch-types';
import { S3_STORE_KINDS } from '../embedded/s3-store';
import type { MigrationOutcomeKind } from '../migration/migration-types';
import type { UploadOutcomeKind } from '../upload/outcome';
import packageJson from '../../package.json';
import type * as CancelCommand from './commands/cancel';
import type * as CodecServerCommand from './commands/codec-server';
import type * as DeleteCommand from './commands/delete';
import type * as DemoCommand from './commands/demo';
import type * as GatewayCommand from './commands/gateway';
import type * as ListCommand from './commands/list';
import type * as MigrateCommand from './commands/migrate';
import type * as PauseCommand from './commands/pause';
import type * as StackCommand from './commands/stack';
import type * as StatusCommand from './commands/status';
import type * as UploadCommand from './commands/upload';
import type * as UploadBatchCommand from './commands/upload-batch';
import type * as WorkerCommand from './commands/worker';
import { describeCliError, ExitCode, UsageError } from './errors';
import { note, processIo, type CliIo } from './io';
import {
  collectKeyValue,
  collectOrigin,
  collectValue,
  parseDurationOption,
  parsePortOption,
  parsePositiveIntOption,
  parseSizeOption,
} from './options';

/**
 * Command modules load when their command runs: the worker's dependencies (Temporal's native
 * core, webpack, the S3 SDK) take a second or more to load, which `--help` and usage errors skip.
 */
const commands = {
  cancel: () => require('./commands/cancel') as typeof CancelCommand,
  codecServer: () => require('./commands/codec-server') as typeof CodecServerCommand,
  delete: () => require('./commands/delete') as typeof DeleteCommand,
  demo: () => require('./commands/demo') as typeof DemoCommand,
  gateway: () => require('./commands/gateway') as typeof GatewayCommand,
  list: () => require('./commands/list') as typeof ListCommand,
  migrate: () => require('./commands/migrate') as typeof MigrateCommand,
  pause: () => require('./commands/pause') as typeof PauseCommand,
  stack: () => require('./commands/stack') as typeof StackCommand,
  status: () => require('./commands/status') as typeof StatusCommand,
  upload: () => require('./commands/upload') as typeof UploadCommand,
  uploadBatch: () => require('./commands/upload-batch') as typeof UploadBatchCommand,
  worker: () => require('./commands/worker') as typeof WorkerCommand,
};

/** Outcomes `list --outcome` accepts: every {@link UploadOutcomeKind}, batch and migration outcome (the type check below fails if one is missing). */
const LIST_OUTCOMES = ['running', 'completed', 'compensated', 'cancelled', 'failed', 'expired', 'partial'] as const satisfies readonly (
  UploadOutcomeKind | BatchOutcomeKind | MigrationOutcomeKind
)[];
const _everyOutcomeListed: Exclude<
  UploadOutcomeKind | BatchOutcomeKind | MigrationOutcomeKind,
  (typeof LIST_OUTCOMES)[number]
> extends never
  ? true
  : never = true;

/** What `list --kind` selects (plural; the parser takes the singular too). */
const LIST_KINDS = ['uploads', 'batches', 'migrations'] as const satisfies readonly ListCommand.ListKind[];

/** `list --kind`: one of {@link LIST_KINDS}, or its singular. */
function parseListKind(value: string): ListCommand.ListKind {
  const kind = LIST_KINDS.find((k) => k === value || k === `${value}s` || k === `${value}es`);
  if (!kind) throw new InvalidArgumentError(`must be ${LIST_KINDS.slice(0, -1).join(', ')} or ${LIST_KINDS.at(-1)} (singular too).`);
  return kind;
}

/** The environment variables, for the end of `--help`. */
function environmentHelp(): string {
  const rows = CONFIG_VARIABLES.map((v) => [v.name, `${v.description}${v.default ? ` (default: ${v.default})` : ''}`] as const);
  const width = Math.max(...rows.map(([name]) => name.length));
  return ['', 'Environment (read by the worker and the CLI):', ...rows.map(([name, text]) => `  ${name.padEnd(width)}  ${text}`)].join(
    '\n',
  );
}

/** Builds the program; commands write to `io` and read `io.env`. */
export function buildProgram(io: CliIo = processIo()): Command {
  const program = new Command('upload-saga')
    .description('Durable uploads of large files into S3-compatible storage, run as sagas on Temporal.')
    .version(packageJson.version)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', environmentHelp());

  program
    .command('stack')
    .description(
      'run a local Temporal dev server + MinIO or versitygw (bucket "uploads") until Ctrl-C, and print the variables to point a worker or the CLI at it',
    )
    .addOption(
      new Option('--temporal <server>', 'the Temporal server: the dev server (SQLite, Web UI) or the real server on PostgreSQL')
        .choices(['dev-server', 'postgres'])
        .default('dev-server'),
    )
    .addOption(
      new Option('--store <store>', 'the S3 store: MinIO, or versitygw on its posix backend (no console)')
        .choices([...S3_STORE_KINDS])
        .default('minio'),
    )
    .option(
      '--postgres <url>',
      'with --temporal postgres: the PostgreSQL server (its user must be allowed to create databases)',
      'postgres://postgres@127.0.0.1:5432',
    )
    .option('--keep-data', 'keep the generated data directory (and the PostgreSQL databases) on exit')
    .option('--data-dir <dir>', 'use this data directory (never deleted; state survives restarts)')
    .option(
      '--encrypt',
      'also start a codec server and point the Web UI at it; prints the encryption key to export (UPLOAD_SAGA_ENCRYPTION_KEY from the environment if set, else a new one)',
    )
    .action((options: StackCommand.StackCommandOptions) => commands.stack().runStack(options, io));

  program
    .command('worker')
    .description('run an upload worker configured from the environment, until Ctrl-C')
    .action(() => commands.worker().runWorker(io));

  program
    .command('gateway')
    .description(
      'run the HTTP gateway (tus at /files; tokens, limits and Redis from UPLOAD_SAGA_GATEWAY_*) until Ctrl-C; needs a worker on the same task queue',
    )
    .option('--host <ip>', 'interface to listen on (default: UPLOAD_SAGA_GATEWAY_HOST or 127.0.0.1)')
    .option('--port <port>', 'port to listen on (default: UPLOAD_SAGA_GATEWAY_PORT or 8080)', parsePortOption)
    .action((options: GatewayCommand.GatewayCommandOptions) => commands.gateway().runGatewayCommand(options, io));

  program
    .command('upload')
    .description(
      'upload a file (a path on the worker host) or an http(s) URL; or, with --prefix or --manifest, a directory or several files as one batch; and follow it with a progress bar',
    )
    .argument(
      '[sources...]',
      'file to upload (resolved to an absolute path), or an http:// or https:// URL the worker downloads; with --prefix: a directory (recursive) or several files',
    )
    .requiredOption('--bucket <bucket>', 'destination bucket')
    .option('--key <key>', 'destination object key (one file)')
    .option('--prefix <prefix>', 'destination key prefix: upload a directory or several files as one batch (keys: prefix + relative path)')
    .option('--manifest <file>', 'a batch from a JSONL file: one {"path": "/abs/file", "key": "relative/key"} per line')
    .option('--include <glob>', 'batch of a directory: only files whose relative path matches; repeat for more', collectValue)
    .option('--exclude <glob>', 'batch of a directory: skip files whose relative path matches; repeat for more', collectValue)
    .addOption(new Option('--mode <mode>', 'batch commit mode (default: independent)').choices(BATCH_MODES))
    .option('--batch-id <id>', 'batch id; the same id attaches to the running batch (default: name + random suffix)')
    .requiredOption('--tenant <tenant>', 'tenant whose quota pays for the upload')
    .option('--upload-id <id>', 'upload id; the same id attaches to the running upload (default: file name + random suffix)')
    .option('--part-size <size>', 'part size, e.g. 8MiB (default: 8MiB, raised if the file needs more than 10,000 parts)', parseSizeOption)
    .option('--concurrency <n>', 'parts in flight at once (default: 4)', parsePositiveIntOption)
    .addOption(new Option('--checksum <algorithm>', 'per-part checksum S3 verifies (default: CRC32C)').choices(CHECKSUM_ALGORITHMS))
    .option('--content-type <type>', 'content type of the object (default: application/octet-stream)')
    .option('--meta <key=value>', 'user metadata; repeat for more', collectKeyValue)
    .option('--webhook <url>', 'URL that receives upload.completed / upload.failed / upload.cancelled')
    .option('--expect-sha256 <hex>', 'SHA-256 the object must have; verified before the object is merged')
    .option('--fail-if-exists', 'refuse to replace an existing object')
    .addOption(
      new Option(
        '--on-quota <action>',
        "when the tenant's quota is full: fail at once, or wait until space is freed (default: fail)",
      ).choices(['fail', 'wait']),
    )
    .option(
      '--quota-wait-deadline <duration>',
      'with --on-quota wait: give up after this long, e.g. 30m, 1h, 2d (default: 1h)',
      parseDurationOption,
    )
    .option('--no-wait', 'start the upload and return at once')
    .option('--no-progress', 'no progress bar; just wait for the result')
    .action(async (sources: string[], options: UploadCommand.UploadCommandOptions & UploadBatchCommand.UploadBatchOptions) => {
      if (options.prefix !== undefined || options.manifest !== undefined) {
        if (options.key !== undefined) throw new UsageError('--key names one object; a batch takes --prefix');
        await commands.uploadBatch().runUploadBatch(sources, options, io);
        return;
      }
      if (sources.length !== 1) throw new UsageError('give one source with --key, or a directory / several files with --prefix');
      if (options.key === undefined) throw new UsageError("required option '--key <key>' not specified (or --prefix for a batch)");
      await commands.upload().runUpload(sources[0]!, options, io);
    });

  program
    .command('migrate')
    .description(
      'copy every object under an S3 prefix under another prefix as one durable migration (server-side in the same store), skipping objects already there; a summary per outcome at the end',
    )
    .argument('<source>', "s3://bucket/prefix of the objects to copy (in the worker's store, or in --profile's)")
    .requiredOption('--bucket <bucket>', 'destination bucket')
    .option('--prefix <prefix>', 'destination key prefix: source key = source prefix + rest → prefix + rest (default: "")')
    .option('--profile <name>', 'the source is in the store of this UPLOAD_SAGA_S3_SOURCE_PROFILES profile (streamed through the worker)')
    .requiredOption('--tenant <tenant>', 'tenant whose quota pays for the bytes copied')
    .option('--migration-id <id>', 'migration id; the same id attaches to the running migration (default: bucket + random suffix)')
    .addOption(new Option('--checksum <algorithm>', 'checksum every copy carries (default: CRC32C)').choices(CHECKSUM_ALGORITHMS))
    .option('--objects-per-chunk <n>', 'objects one chunk activity copies (default: 250)', parsePositiveIntOption)
    .option('--concurrency <n>', 'copies in flight per chunk (default: 16)', parsePositiveIntOption)
    .option('--report <file>', 'write the per-object report (JSONL: key, destinationKey, size, status, type, message) to this file')
    .option('--no-wait', 'start the migration and return at once')
    .action(async (source: string, options: MigrateCommand.MigrateOptions) => {
      await commands.migrate().runMigrate(source, options, io);
    });

  program
    .command('status')
    .description("an upload's, a batch's or a migration's phase, outcome and progress; its result or failure report once it ended")
    .argument('<tenant>')
    .argument('<id>', 'an upload id, a batch id or a migration id')
    .action((tenant: string, uploadId: string) => commands.status().runStatus(tenant, uploadId, {}, io));

  program
    .command('cancel')
    .description('cancel a running upload, batch or migration; the saga undoes what was done (a migration: what it copied stays)')
    .argument('<tenant>')
    .argument('<id>', 'an upload id, a batch id or a migration id')
    .option('--wait', 'wait for the compensations and print their outcome')
    .action((tenant: string, uploadId: string, options: { wait?: boolean }) => commands.cancel().runCancel(tenant, uploadId, options, io));

  program
    .command('pause')
    .description('pause a running upload, batch or migration: parts (chunks) in flight finish, nothing new starts, reservations are kept')
    .argument('<tenant>')
    .argument('<id>', 'an upload id, a batch id or a migration id')
    .option('--reason <text>', 'who paused it and why (shown in the Web UI)')
    .option(
      '--expiry <runs|stops>',
      "an upload through the gateway: whether its expiry clock runs or stops while paused (default: the gateway's UPLOAD_SAGA_GATEWAY_PAUSE_EXPIRY)",
    )
    .action((tenant: string, uploadId: string, options: { reason?: string; expiry?: string }) =>
      commands.pause().runPause(tenant, uploadId, options, io),
    );

  program
    .command('resume')
    .description('resume a paused upload, batch or migration; what is already stored is not sent again')
    .argument('<tenant>')
    .argument('<id>', 'an upload id, a batch id or a migration id')
    .action((tenant: string, uploadId: string) => commands.pause().runResume(tenant, uploadId, io));

  program
    .command('delete')
    .description("delete an object through the delete saga; gives its bytes back to the tenant's quota when the saga stored it")
    .argument('<tenant>')
    .requiredOption('--bucket <bucket>', 'the bucket')
    .requiredOption('--key <key>', 'the object key')
    .action((tenant: string, options: { bucket: string; key: string }) => commands.delete().runDelete({ tenant, ...options }, io));

  program
    .command('list')
    .description('recent uploads, then recent batches, then recent migrations, newest first')
    .option('--tenant <tenant>', 'only this tenant')
    .option('--kind <kind>', 'only uploads, only batches or only migrations (default: all three)', parseListKind)
    .addOption(new Option('--outcome <outcome>', 'only this outcome').choices(LIST_OUTCOMES))
    .option('--limit <n>', 'at most this many (default: 20)', parsePositiveIntOption)
    .action((options: ListCommand.ListCommandOptions) => commands.list().runList(options, io));

  program
    .command('codec-server')
    .description('decrypt payloads for the Temporal Web UI and the temporal CLI (keys from UPLOAD_SAGA_ENCRYPTION_KEY*), until Ctrl-C')
    .option('--port <port>', 'port to listen on (default: 8888)', parsePortOption)
    .option('--host <ip>', 'interface to listen on; not loopback only with UPLOAD_SAGA_CODEC_SERVER_TOKEN set (default: 127.0.0.1)')
    .option('--ui-origin <url>', 'browser origin allowed to call (the Web UI); repeat for more (default: TEMPORAL_UI_URL)', collectOrigin)
    .option(
      '--namespace <namespace>',
      'serve only this namespace (X-Namespace header); repeat for more (default: all)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option('--insecure-no-auth', 'allow a non-loopback --host without a token (anyone who reaches it can decrypt)')
    .action((options: CodecServerCommand.CodecServerCommandOptions) => commands.codecServer().runCodecServer(options, io));

  program
    .command('demo')
    .description('start a local stack and a worker, upload a random file with a progress bar, verify it, shut down')
    .option('--keep-running', 'keep the stack and the worker running afterwards, until Ctrl-C')
    .option('--size <size>', 'size of the generated file (default: 64MiB)', parseSizeOption)
    .action((options: { keepRunning?: boolean; size?: number }) => commands.demo().runDemo(options, io));

  return program;
}

/** Parses `argv` and runs the command. @returns the exit code */
export async function main(argv: readonly string[] = process.argv, io: CliIo = processIo()): Promise<number> {
  try {
    await buildProgram(io).parseAsync([...argv]);
    return ExitCode.Ok;
  } catch (error) {
    // Commander has printed its own message (or the help / version) already.
    if (error instanceof CommanderError) return error.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    const { exitCode, lines } = describeCliError(error, io.env);
    note(io, ...lines);
    return exitCode;
  }
}

/**
 * Runs {@link main} for this process and sets the exit code. If something still holds the event
 * loop open a few seconds after the command finished (a lingering socket), the process exits anyway.
 */
export function run(argv: readonly string[] = process.argv): void {
  // `upload-saga list | head`: a closed pipe ends the command quietly, as with any Unix tool.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw error;
    });
  }
  void main(argv).then((code) => {
    process.exitCode = code;
    setTimeout(() => process.exit(code), 5000).unref();
  });
}

if (require.main === module) run();
