/**
 * `upload-saga stack [--temporal dev-server|postgres] [--store minio|versitygw] [--postgres URL] [--keep-data] [--data-dir DIR]`:
 * a local Temporal + MinIO (or versitygw) until Ctrl-C.
 *
 * Why it is built this way: it is the embedded stack the tests and the demo use (real servers
 * built from Go modules, free ports, bucket `uploads`), kept running for a developer who wants to
 * run `upload-saga worker` and `upload-saga upload` by hand. It prints the `export` lines for
 * exactly the variables those commands read. Ctrl-C stops both servers gracefully; a second
 * Ctrl-C exits at once (the servers die with the process, see src/embedded/exit-cleanup.ts).
 * With `--encrypt` it also runs a codec server (loopback only: it is for the person at this
 * machine) before the dev server, so the dev server's Web UI can be pointed at it with
 * `--ui-codec-endpoint`; the UI's origin is allowed once its port is known. The key comes from
 * `UPLOAD_SAGA_ENCRYPTION_KEY*` if set, else a new random one is printed with the other exports.
 * With `--temporal postgres` the Temporal server is the real one on PostgreSQL (databases of its
 * own, dropped on exit unless the data is kept); it has no Web UI.
 */
import { randomBytes } from 'node:crypto';
import { AesGcmPayloadCodec, fingerprintKeyId, startCodecServer, type EncryptionConfig, type RunningCodecServer } from '../../codec';
import { loadConfig } from '../../config';
import { startEmbeddedStack, type EmbeddedTemporalKind, type PostgresConnection, type S3StoreKind } from '../../embedded';
import { UsageError } from '../errors';
import { note, out, type CliIo } from '../io';
import { waitForShutdownSignal } from '../signals';
import { embeddedStackEnv, exportLines } from '../stack-env';
import { labelled } from '../upload-report';
import { uiOrigins } from './codec-server';

/** The bucket the stack creates. */
export const STACK_BUCKET = 'uploads';

/** Options of the `stack` command. */
export interface StackCommandOptions {
  /** Keep the generated temp data dir on exit. @default false */
  keepData?: boolean;
  /** Use (and never delete) this data dir; state survives restarts. @default a fresh temp dir */
  dataDir?: string;
  /** Start a codec server and point the Web UI at it. @default false */
  encrypt?: boolean;
  /** The Temporal server to run. @default 'dev-server' */
  temporal?: EmbeddedTemporalKind;
  /** The S3 store to run. @default 'minio' */
  store?: S3StoreKind;
  /** With `temporal: 'postgres'`: `postgres://user[:password]@host[:port]`. @default 'postgres://postgres@127.0.0.1:5432' */
  postgres?: string;
}

/** The connection a `--postgres` URL names; the password may also come from PGPASSWORD. */
export function postgresConnection(url: string, env: NodeJS.ProcessEnv): PostgresConnection {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--postgres must be a URL like postgres://postgres@127.0.0.1:5432, got ${JSON.stringify(url)}`);
  }
  if (!['postgres:', 'postgresql:'].includes(parsed.protocol) || parsed.hostname === '') {
    throw new UsageError(`--postgres must be a postgres:// URL with a host, got ${JSON.stringify(url)}`);
  }
  const password = parsed.password ? decodeURIComponent(parsed.password) : env.PGPASSWORD;
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port ? Number(parsed.port) : 5432,
    user: parsed.username ? decodeURIComponent(parsed.username) : 'postgres',
    ...(password ? { password } : {}),
  };
}

/** The keys for `--encrypt`: the environment's, or a new key (returned as base64 to export). */
function stackEncryption(env: NodeJS.ProcessEnv): { encryption: EncryptionConfig; generatedKey?: string } {
  const configured = loadConfig(env).encryption;
  if (configured) return { encryption: configured };
  const key = randomBytes(32);
  return { encryption: { keys: [{ id: fingerprintKeyId(key), key }] }, generatedKey: key.toString('base64') };
}

/** Runs the command until SIGINT/SIGTERM. */
export async function runStack(options: StackCommandOptions, io: CliIo): Promise<void> {
  const temporal = options.temporal ?? 'dev-server';
  const store = options.store ?? 'minio';
  const postgres =
    temporal === 'postgres' ? postgresConnection(options.postgres ?? 'postgres://postgres@127.0.0.1:5432', io.env) : undefined;
  note(
    io,
    `starting ${temporal === 'postgres' ? 'Temporal on PostgreSQL' : 'Temporal'} + ${store === 'versitygw' ? 'versitygw' : 'MinIO'} (the first run builds the servers from Go modules, which takes several minutes)…`,
  );
  const keys = options.encrypt ? stackEncryption(io.env) : undefined;
  const codecServer: RunningCodecServer | undefined = keys
    ? await startCodecServer({ codec: new AesGcmPayloadCodec({ encryption: keys.encryption }) })
    : undefined;
  let stack;
  try {
    stack = await startEmbeddedStack({
      buckets: [STACK_BUCKET],
      ...(options.dataDir ? { dataDir: options.dataDir } : {}),
      keepDataDir: options.keepData ?? false,
      binaries: { logger: io.stderr },
      temporal,
      store,
      ...(postgres ? { postgres: { postgres } } : {}),
      ...(codecServer ? { devServer: { uiCodecEndpoint: codecServer.url } } : {}),
    });
  } catch (error) {
    await codecServer?.close();
    throw error;
  }
  if (stack.temporal.uiUrl) for (const origin of uiOrigins(stack.temporal.uiUrl)) codecServer?.allowOrigin(origin);
  const encryptionEnv: Record<string, string> = keys?.generatedKey
    ? { UPLOAD_SAGA_ENCRYPTION_KEY: keys.generatedKey, UPLOAD_SAGA_ENCRYPTION_KEY_ID: keys.encryption.keys[0].id }
    : {};
  const shutdown = waitForShutdownSignal();
  try {
    const dataKept = Boolean(options.dataDir || options.keepData);
    out(
      io,
      'embedded stack running',
      ...labelled([
        ['temporal', `${stack.temporal.address} (namespace ${stack.temporal.namespace})`],
        [
          'postgresql',
          stack.temporal.databases && postgres
            ? `${postgres.host}:${postgres.port} (databases ${stack.temporal.databases.default} and ${stack.temporal.databases.visibility})`
            : undefined,
        ],
        ['web ui', stack.temporal.uiUrl],
        ['s3', `${stack.s3.kind} ${stack.s3.endpoint} (bucket ${STACK_BUCKET}, region ${stack.s3.region})`],
        ['minio console', stack.s3.consoleUrl],
        [
          'codec server',
          codecServer
            ? `${codecServer.url} (the Web UI decrypts through it; key ${keys?.encryption.keys[0].id}${keys?.generatedKey ? ', new' : ', from the environment'})`
            : undefined,
        ],
        ['data', `${stack.dataDir}${dataKept ? ' (kept on exit)' : ' (deleted on exit)'}${postgres ? ', with the databases' : ''}`],
      ]),
      '',
      'point a worker or the CLI at it:',
      ...exportLines({ ...embeddedStackEnv(stack), ...encryptionEnv }),
      '',
      'then, in other terminals: upload-saga worker   and   upload-saga upload <file> --bucket uploads --key <key> --tenant <tenant>',
      'for uploads from browsers and tus clients also: UPLOAD_SAGA_GATEWAY_TOKENS=<tenant>=<sha256 of a token> upload-saga gateway',
      'press Ctrl-C to stop',
    );
    const signal = await shutdown.received;
    note(io, `\n${signal}: stopping the stack…`);
  } finally {
    await stack.stop();
    await codecServer?.close();
    shutdown.dispose();
  }
  note(io, 'stack stopped');
}
