/**
 * `upload-saga codec-server [--port N] [--host IP] [--ui-origin URL…] [--namespace NS…]`: decrypt
 * payloads for the Temporal Web UI and the `temporal` CLI, until Ctrl-C.
 *
 * Why it is built this way: the keys come from the same variables the worker reads
 * (`UPLOAD_SAGA_ENCRYPTION_KEY`, `…_KEY_ID`, `…_PREVIOUS_KEYS`, validated by `loadConfig`), so the
 * server decrypts exactly what the deployment encrypted, and the token from
 * `UPLOAD_SAGA_CODEC_SERVER_TOKEN`. By default it listens on 127.0.0.1: run it on the machine of the
 * person who holds the key and point the Web UI there (the browser calls it, so it need not be
 * reachable from anywhere else). The Web UI's origin is allowed for CORS, from `TEMPORAL_UI_URL`
 * unless `--ui-origin` says otherwise. It prints the flags that point the UI and the CLI at it.
 */
import { loadConfig } from '../../config';
import { AesGcmPayloadCodec, startCodecServer } from '../../codec';
import { CliError, ExitCode } from '../errors';
import { note, out, type CliIo } from '../io';
import { waitForShutdownSignal } from '../signals';
import { labelled } from '../upload-report';
import { webUiBaseUrl } from '../web-ui';

/** Port Temporal's codec server samples use. */
export const DEFAULT_CODEC_SERVER_PORT = 8888;

/** Options of the `codec-server` command, as commander parses them. */
export interface CodecServerCommandOptions {
  /** @default 8888 */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** Browser origins allowed to call. @default the origin of TEMPORAL_UI_URL, as `localhost` and `127.0.0.1` */
  uiOrigin?: string[];
  /** Namespaces served. @default every namespace */
  namespace?: string[];
  /** Listen on a non-loopback interface without a token. @default false */
  insecureNoAuth?: boolean;
}

/** `http://localhost:8233/…` → both `http://localhost:8233` and `http://127.0.0.1:8233` (the same UI, two origins). */
export function uiOrigins(uiUrl: string): string[] {
  const url = new URL(uiUrl);
  const origins = [url.origin];
  if (url.hostname === 'localhost' || url.hostname === '127.0.0.1') {
    const other = new URL(url.origin);
    other.hostname = url.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
    origins.push(other.origin);
  }
  return origins;
}

/**
 * Runs the command until SIGINT/SIGTERM.
 * @throws ConfigError for bad variables, CliError when no encryption key is configured
 */
export async function runCodecServer(options: CodecServerCommandOptions, io: CliIo): Promise<void> {
  const config = loadConfig(io.env);
  if (!config.encryption) {
    throw new CliError('the codec server needs the encryption keys: UPLOAD_SAGA_ENCRYPTION_KEY is not set', ExitCode.Failure, [
      '  set UPLOAD_SAGA_ENCRYPTION_KEY (and UPLOAD_SAGA_ENCRYPTION_KEY_ID, UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS) as the workers have them',
    ]);
  }
  const codec = new AesGcmPayloadCodec({ encryption: config.encryption });
  const origins = options.uiOrigin?.length ? options.uiOrigin : uiOrigins(webUiBaseUrl(io.env));
  const token = config.codecServer.token;
  const server = await startCodecServer({
    codec,
    ...(token ? { token } : {}),
    allowedOrigins: origins,
    ...(options.namespace?.length ? { namespaces: options.namespace } : {}),
    host: options.host ?? '127.0.0.1',
    port: options.port ?? DEFAULT_CODEC_SERVER_PORT,
    allowUnauthenticatedRemote: options.insecureNoAuth ?? false,
    log: (line) => note(io, line),
  });
  const shutdown = waitForShutdownSignal();
  try {
    out(
      io,
      `codec server on ${server.url}`,
      ...labelled([
        ['keys', `${codec.currentKeyId} encrypts; decrypts ${codec.keyIds.join(', ')}`],
        ['browser origins', origins.join(', ')],
        ['namespaces', options.namespace?.length ? options.namespace.join(', ') : 'all'],
        ['authentication', token ? 'Authorization: Bearer $UPLOAD_SAGA_CODEC_SERVER_TOKEN' : 'none (loopback only)'],
      ]),
      '',
      'Web UI: start the dev server with   temporal server start-dev --ui-codec-endpoint ' + server.url,
      '        or set it under "Codec Server" in the UI (per browser)',
      'CLI:    temporal workflow show --workflow-id <id> --codec-endpoint ' +
        server.url +
        (token ? ' --codec-auth "Bearer $UPLOAD_SAGA_CODEC_SERVER_TOKEN"' : ''),
      'press Ctrl-C to stop',
    );
    const signal = await shutdown.received;
    note(io, `\n${signal}: stopping the codec server…`);
  } finally {
    await server.close();
    shutdown.dispose();
  }
}
