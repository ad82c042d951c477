/**
 * The embedded stack works end to end (real MinIO, real Temporal, Web UI), and server binaries
 * are looked up in the documented order (env var → PATH → cache) without ever building.
 */
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { GetObjectCommand, ListBucketsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  JAEGER_MODULE,
  JAEGER_VERSION,
  ServerBinaryBuildError,
  ServerBinaryNotExecutableError,
  ServerBinaryNotFoundError,
  TEMPORAL_CLI_MODULE,
  TEMPORAL_CLI_VERSION,
  ensureServerBinary,
  findServerBinary,
  s3ClientConfig,
  ensureBuckets,
  startTemporalDevServer,
  startVersitygwServer,
  workflowUiUrl,
} from '../src/embedded';
import { UPLOAD_SEARCH_ATTRIBUTE_TYPES } from '../src/upload/search-attributes';

describe('embedded stack', () => {
  const s3Info = {
    endpoint: inject('s3Endpoint'),
    region: inject('s3Region'),
    accessKeyId: inject('s3AccessKeyId'),
    secretAccessKey: inject('s3SecretAccessKey'),
  };
  let s3: S3Client;
  let connection: Connection;

  beforeAll(async () => {
    s3 = new S3Client(s3ClientConfig(s3Info));
    connection = await Connection.connect({ address: inject('temporalAddress') });
  });
  afterAll(async () => {
    s3?.destroy();
    await connection?.close();
  });

  it("serves S3 from the run's store with both test buckets", async () => {
    const { Buckets = [] } = await s3.send(new ListBucketsCommand({}));
    expect(Buckets.map((bucket) => bucket.Name)).toEqual(expect.arrayContaining(['uploads', 'uploads-other']));

    const key = `embedded-stack-test/${Date.now()}-${Math.random().toString(36).slice(2)}.txt`;
    const body = 'hello from the embedded stack ✓';
    await s3.send(new PutObjectCommand({ Bucket: 'uploads', Key: key, Body: body }));
    const object = await s3.send(new GetObjectCommand({ Bucket: 'uploads', Key: key }));
    expect(await object.Body?.transformToString()).toBe(body);
  });

  it('runs versitygw on its posix backend: objects are files in its data dir and outlive a restart on the same endpoint', async () => {
    const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'upload-saga-versitygw-'));
    const store = await startVersitygwServer({ dataDir });
    const client = new S3Client(s3ClientConfig(store));
    try {
      expect(store).toMatchObject({ kind: 'versitygw', consoleUrl: undefined });
      await ensureBuckets(store, ['kept']);
      await ensureBuckets(store, ['kept']); // again: an existing bucket is left alone
      await client.send(new PutObjectCommand({ Bucket: 'kept', Key: 'a/b.txt', Body: 'posix' }));
      expect(await fsp.readFile(path.join(dataDir, 'versitygw', 'kept', 'a', 'b.txt'), 'utf8')).toBe('posix');
      const endpoint = store.endpoint;
      const pid = store.pid;
      await store.restart();
      expect(store.endpoint).toBe(endpoint);
      expect(store.pid).not.toBe(pid);
      const object = await client.send(new GetObjectCommand({ Bucket: 'kept', Key: 'a/b.txt' }));
      expect(await object.Body?.transformToString()).toBe('posix');
    } finally {
      client.destroy();
      await store.stop();
      await fsp.rm(dataDir, { recursive: true, force: true });
    }
  });

  it('serves Temporal with the upload search attributes registered', async () => {
    const info = await connection.workflowService.getSystemInfo({});
    expect(info.serverVersion).toMatch(/^\d+\.\d+/);

    const { customAttributes } = await connection.operatorService.listSearchAttributes({
      namespace: inject('namespace'),
    });
    // Proto IndexedValueType numbers: Keyword = 2, Int = 3.
    const expectedNumbers = { Keyword: 2, Int: 3 } as const;
    for (const [name, type] of Object.entries(UPLOAD_SEARCH_ATTRIBUTE_TYPES)) {
      expect(customAttributes[name], name).toBe(expectedNumbers[type]);
    }
  });

  // The server on PostgreSQL (UPLOAD_SAGA_TEST_TEMPORAL=postgres) has no Web UI.
  it.skipIf(inject('temporalUiUrl') === '')('serves the Web UI, including workflow pages', async () => {
    const url = workflowUiUrl({
      uiUrl: inject('temporalUiUrl'),
      namespace: inject('namespace'),
      workflowId: 'upload/tenant-a/some file.bin',
      runId: '00000000-0000-0000-0000-000000000000',
    });
    expect(url).toBe(
      `${inject('temporalUiUrl')}/namespaces/${inject('namespace')}/workflows/` +
        'upload%2Ftenant-a%2Fsome%20file.bin/00000000-0000-0000-0000-000000000000',
    );
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(await response.text()).toMatch(/<html/i);
  });

  it('restarts a killed Temporal dev server on the same address with its workflows kept (SQLite)', async () => {
    const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'upload-saga-restart-'));
    const server = await startTemporalDevServer({ dataDir, searchAttributes: {} });
    let client: Client | undefined;
    try {
      client = new Client({ connection: await Connection.connect({ address: server.address }) });
      // No worker: the workflow just stays running, recorded in the database.
      const handle = await client.workflow.start('notServedByAnyWorker', { taskQueue: 'restart-test', workflowId: 'survives-a-restart' });
      const pidBefore = server.pid;
      server.kill('SIGKILL');
      await server.exited;
      await server.restart();
      expect(server.pid).not.toBe(pidBefore);
      const description = await client.workflow.getHandle(handle.workflowId).describe();
      expect(description.status.name).toBe('RUNNING');
      expect(description.runId).toBe(handle.firstExecutionRunId);
    } finally {
      await client?.connection.close();
      await server.stop();
      await fsp.rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('server binary lookup', () => {
  let root: string;

  beforeAll(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'upload-saga-binaries-'));
  });
  afterAll(async () => {
    await fsp.rm(root, { recursive: true, force: true });
  });

  async function fakeExecutable(file: string): Promise<string> {
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await fsp.writeFile(file, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    return file;
  }

  it('prefers the env var, then PATH, then the cache dir, and never builds when told not to', async () => {
    const fromEnv = await fakeExecutable(path.join(root, 'custom', 'my-temporal'));
    const pathDir = path.join(root, 'path-bin');
    const fromPath = await fakeExecutable(path.join(pathDir, 'temporal'));
    const cacheDir = path.join(root, 'cache');
    const fromCache = await fakeExecutable(path.join(cacheDir, 'temporal'));
    const emptyDir = path.join(root, 'empty');
    await fsp.mkdir(emptyDir, { recursive: true });
    const noBuild = { allowBuild: false } as const;

    const all = { UPLOAD_SAGA_TEMPORAL_BIN: fromEnv, PATH: pathDir, UPLOAD_SAGA_CACHE_DIR: cacheDir };
    expect(await findServerBinary('temporal', { env: all })).toEqual({ path: fromEnv, source: 'env' });
    expect(await ensureServerBinary('temporal', { env: all, ...noBuild })).toBe(fromEnv);

    const noEnvVar = { PATH: `${emptyDir}${path.delimiter}${pathDir}`, UPLOAD_SAGA_CACHE_DIR: cacheDir };
    expect(await findServerBinary('temporal', { env: noEnvVar })).toEqual({ path: fromPath, source: 'path' });

    const cacheOnly = { PATH: emptyDir, UPLOAD_SAGA_CACHE_DIR: cacheDir };
    expect(await findServerBinary('temporal', { env: cacheOnly })).toEqual({ path: fromCache, source: 'cache' });
    // An explicit cacheDir option wins over the env var.
    expect(await findServerBinary('temporal', { env: { PATH: emptyDir }, cacheDir })).toEqual({
      path: fromCache,
      source: 'cache',
    });

    // Another server's variable does not apply, and nothing is found for minio.
    const nothing = { PATH: emptyDir, UPLOAD_SAGA_CACHE_DIR: emptyDir, UPLOAD_SAGA_TEMPORAL_BIN: fromEnv };
    expect(await findServerBinary('minio', { env: nothing })).toBeUndefined();
    await expect(ensureServerBinary('minio', { env: nothing, ...noBuild })).rejects.toBeInstanceOf(ServerBinaryNotFoundError);
  });

  it('rejects an env var that does not name an executable file', async () => {
    const notExecutable = path.join(root, 'not-executable');
    await fsp.writeFile(notExecutable, 'just text', { mode: 0o644 });
    const env = { UPLOAD_SAGA_MINIO_BIN: notExecutable, PATH: '' };
    await expect(findServerBinary('minio', { env })).rejects.toBeInstanceOf(ServerBinaryNotExecutableError);
    await expect(
      findServerBinary('minio', { env: { UPLOAD_SAGA_MINIO_BIN: path.join(root, 'missing'), PATH: '' } }),
    ).rejects.toBeInstanceOf(ServerBinaryNotExecutableError);
  });

  it('ignores a cached binary whose version stamp names another version', async () => {
    const cacheDir = path.join(root, 'stamped-cache');
    await fakeExecutable(path.join(cacheDir, 'temporal'));
    const env = { PATH: '' };
    await fsp.writeFile(path.join(cacheDir, 'temporal.version'), `${TEMPORAL_CLI_MODULE}@v0.0.1\n`);
    expect(await findServerBinary('temporal', { env, cacheDir })).toBeUndefined();
    await fsp.writeFile(path.join(cacheDir, 'temporal.version'), `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}\n`);
    expect(await findServerBinary('temporal', { env, cacheDir })).toEqual({
      path: path.join(cacheDir, 'temporal'),
      source: 'cache',
    });
  });

  it('builds once with go install into the cache, even when asked twice at the same time', async () => {
    const cacheDir = path.join(root, 'build-cache');
    const invocations = path.join(root, 'go-invocations.log');
    // A stand-in for `go install -v module@version`: logs like go, takes a moment, writes $GOBIN/temporal.
    const fakeGo = await fakeExecutable(path.join(root, 'fake-go', 'go'));
    await fsp.writeFile(
      fakeGo,
      [
        '#!/bin/sh',
        `echo "$*" >> '${invocations}'`,
        'echo "go: downloading example.com/dep v1.2.3" >&2',
        '/bin/sleep 1',
        'echo "example.com/dep/pkg" >&2',
        'printf "#!/bin/sh\\nexit 0\\n" > "$GOBIN/temporal" && /bin/chmod +x "$GOBIN/temporal"',
      ].join('\n'),
      { mode: 0o755 },
    );
    const lines: string[] = [];
    const options = {
      env: { PATH: '' },
      cacheDir,
      goBinary: fakeGo,
      progressIntervalMs: 200,
      logger: { write: (text: string) => lines.push(text) },
    };

    const [first, second] = await Promise.all([ensureServerBinary('temporal', options), ensureServerBinary('temporal', options)]);
    expect(first).toBe(path.join(cacheDir, 'temporal'));
    expect(second).toBe(first);
    expect((await fsp.readFile(invocations, 'utf8')).trim().split('\n')).toEqual([
      `install -v ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`,
    ]);
    expect(await fsp.readFile(path.join(cacheDir, 'temporal.version'), 'utf8')).toBe(`${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}\n`);
    const log = lines.join('');
    expect(log).toContain('building temporal from source');
    expect(log).toContain('waiting for pid');
    expect(log).toMatch(/built temporal in \d+s \(1 modules downloaded, 1 packages compiled\)/);
    // Nothing but the binary, its stamp and no leftover lock or staging dir.
    expect((await fsp.readdir(cacheDir)).sort()).toEqual(['temporal', 'temporal.version']);
  });

  it('builds jaeger inside a wrapper module (its go.mod has a replace): go mod init, go get -tool, go build -o, in one staging dir', async () => {
    const cacheDir = path.join(root, 'wrapper-cache');
    const invocations = path.join(root, 'wrapper-invocations.log');
    // A stand-in for go: records each call with its working directory, writes go.mod and the built binary.
    const fakeGo = await fakeExecutable(path.join(root, 'fake-go-wrapper', 'go'));
    await fsp.writeFile(
      fakeGo,
      [
        '#!/bin/sh',
        `echo "$PWD|$*" >> '${invocations}'`,
        'case "$1" in',
        '  mod) echo "module $3" > go.mod ;;',
        '  get) test -f go.mod || exit 1 ;;',
        '  build) printf "#!/bin/sh\\nexit 0\\n" > "$4" && /bin/chmod +x "$4" ;;',
        'esac',
      ].join('\n'),
      { mode: 0o755 },
    );
    const built = await ensureServerBinary('jaeger', {
      env: { PATH: '' },
      cacheDir,
      goBinary: fakeGo,
      logger: { write: () => undefined },
    });

    expect(built).toBe(path.join(cacheDir, 'jaeger'));
    const calls = (await fsp.readFile(invocations, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => line.split('|') as [string, string]);
    const staging = calls[0]![0];
    expect(path.basename(staging)).toMatch(/^\.build-jaeger-/);
    expect(calls.map(([cwd]) => cwd)).toEqual([staging, staging, staging]);
    expect(calls.map(([, args]) => args)).toEqual([
      'mod init upload-saga-build/jaeger',
      `get -tool ${JAEGER_MODULE}@${JAEGER_VERSION}`,
      `build -v -o ${path.join(staging, 'jaeger')} ${JAEGER_MODULE}`,
    ]);
    // The stamp the lead's manual build wrote matches: a cached binary is reused, not rebuilt.
    expect(await fsp.readFile(path.join(cacheDir, 'jaeger.version'), 'utf8')).toBe(`${JAEGER_MODULE}@${JAEGER_VERSION}\n`);
    expect((await fsp.readdir(cacheDir)).sort()).toEqual(['jaeger', 'jaeger.version']);
  });

  it('reports a failed build with the tail of go output', async () => {
    const failingGo = await fakeExecutable(path.join(root, 'failing-go', 'go'));
    await fsp.writeFile(failingGo, '#!/bin/sh\necho "main.go:1:1: something broke" >&2\nexit 2\n', { mode: 0o755 });
    const cacheDir = path.join(root, 'failing-cache');
    const error = await ensureServerBinary('minio', {
      env: { PATH: '' },
      cacheDir,
      goBinary: failingGo,
      logger: { write: () => undefined },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServerBinaryBuildError);
    expect((error as ServerBinaryBuildError).exitCode).toBe(2);
    expect((error as ServerBinaryBuildError).outputTail).toContain('something broke');
    expect(await fsp.readdir(cacheDir)).toEqual([]);
  });
});
