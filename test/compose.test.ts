/**
 * docker-compose.yml and the Dockerfile, checked against the code they deploy — Docker cannot run
 * here, so the file is loaded with compose-go (the library `docker compose` itself uses, through
 * tools/compose-check), which refuses what `docker compose` would refuse, and parsed, and each
 * promise it makes is checked statically: Temporal runs the server image at the version and with
 * the dynamic config the tests on PostgreSQL use, after a one-shot schema setup;
 * the worker's environment is exactly what `loadConfig` reads and accepts, its addresses point at
 * services that exist on the right ports, the admin-tools service registers every search
 * attribute the workflow sets (with the right type), the bucket exists, and the image runs the worker.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../src/config';
import { ensureServerBinary, POSTGRES_DYNAMIC_CONFIG, TEMPORAL_SERVER_VERSION } from '../src/embedded';
import { loadGatewayConfig } from '../src/gateway/config';
import { UPLOAD_SEARCH_ATTRIBUTE_TYPES } from '../src/upload/search-attributes';
import { SERVER_BUILD_WAIT_MS } from './support/late-built-servers';

const ROOT = path.resolve(__dirname, '..');
const REQUIRED = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_TASK_QUEUE',
  'S3_ENDPOINT',
  'S3_ACCESS_KEY_ID',
  'S3_SECRET_ACCESS_KEY',
];

interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | number | { target: number })[];
  expose?: (string | number)[];
  volumes?: (string | { target: string })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[] };
}

// `merge: true`: the second gateway replica is the first one's YAML anchor merged (`<<: *gateway`).
const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};
const services = compose.services;

/**
 * Compose interpolation as `docker compose` does it with an empty shell environment:
 * `${VAR:-default}` and `${VAR-default}` give the default, `${VAR}` / `$VAR` give "", `$$` is a `$`.
 */
function interpolate(value: string): string {
  return value.replace(/\$\$|\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)/g, (match, _braced: string | undefined, fallback: string | undefined) => {
    if (match === '$$') return '$';
    return fallback ?? '';
  });
}

function environmentOf(service: ComposeService): Record<string, string> {
  const raw = service.environment ?? {};
  const entries: [string, string][] = Array.isArray(raw)
    ? raw.map((item) => {
        const eq = item.indexOf('=');
        return eq < 0 ? [item, ''] : [item.slice(0, eq), item.slice(eq + 1)];
      })
    : Object.entries(raw).map(([k, v]) => [k, v === null ? '' : String(v)]);
  return Object.fromEntries(entries.map(([k, v]) => [k, interpolate(v)]));
}

/** Container-side ports a service publishes or exposes. */
function containerPorts(service: ComposeService): number[] {
  const fromPorts = (service.ports ?? []).map((p) =>
    typeof p === 'object' ? p.target : Number(String(p).split(':').pop()!.split('/')[0]),
  );
  return [...fromPorts, ...(service.expose ?? []).map((p) => Number(String(p).split('/')[0]))];
}

function commandText(service: ComposeService): string {
  const command = service.command ?? '';
  return interpolate(Array.isArray(command) ? command.join(' ') : command);
}

function serviceByImage(prefix: string): [string, ComposeService] {
  const found = Object.entries(services).filter(([, s]) => interpolate(s.image ?? '').startsWith(prefix));
  expect(found, `exactly one service runs ${prefix}`).toHaveLength(1);
  return found[0]!;
}

const worker = services.worker!;
const workerEnv = environmentOf(worker);

describe('docker-compose.yml', () => {
  it('has the services of the production-like stack', () => {
    expect(Object.keys(services)).toEqual(
      expect.arrayContaining([
        'postgresql',
        'temporal-schema',
        'temporal',
        'temporal-admin-tools',
        'temporal-ui',
        'minio',
        'minio-setup',
        'worker',
      ]),
    );
    expect(environmentOf(services.temporal!)).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgresql' });
    expect(interpolate(services['temporal-ui']!.image!)).toMatch(/^temporalio\/ui:/);
  });

  it('sets only variables the config module declares', () => {
    const declared = new Set(CONFIG_VARIABLES.map((v) => v.name));
    expect(Object.keys(workerEnv).filter((name) => !declared.has(name))).toEqual([]);
  });

  it('sets every variable the worker needs to reach this stack', () => {
    for (const name of REQUIRED) expect(workerEnv[name], name).toBeTruthy();
  });

  it('gives the worker an environment loadConfig accepts as written', () => {
    const config = loadConfig(workerEnv);
    expect(config.temporal).toMatchObject({ address: 'temporal:7233', namespace: 'default', taskQueue: 'upload-saga', tls: false });
    expect(config.s3).toMatchObject({ endpoint: 'http://minio:9000', forcePathStyle: true });
    expect(config.allowedRoots).toEqual(['/data/inbox']);
  });

  it('points TEMPORAL_ADDRESS at the Temporal service and its frontend port', () => {
    const [host, port] = workerEnv.TEMPORAL_ADDRESS!.split(':');
    const temporal = services[host!];
    expect(temporal, `service "${host}"`).toBeDefined();
    expect(interpolate(temporal!.image!)).toMatch(/^temporalio\/server:/);
    expect(Number(port)).toBe(7233);
    expect(containerPorts(temporal!)).toContain(7233);
  });

  it('points S3_ENDPOINT at the MinIO service, its API port and its credentials', () => {
    const url = new URL(workerEnv.S3_ENDPOINT!);
    const minio = services[url.hostname];
    expect(minio, `service "${url.hostname}"`).toBeDefined();
    expect(commandText(minio!)).toMatch(/^server \S+ --address :(\d+)/);
    const apiPort = Number(/--address :(\d+)/.exec(commandText(minio!))![1]);
    expect(Number(url.port)).toBe(apiPort);
    expect(containerPorts(minio!)).toContain(apiPort);
    const minioEnv = environmentOf(minio!);
    expect(workerEnv.S3_ACCESS_KEY_ID).toBe(minioEnv.MINIO_ROOT_USER);
    expect(workerEnv.S3_SECRET_ACCESS_KEY).toBe(minioEnv.MINIO_ROOT_PASSWORD);
    expect(minioEnv.MINIO_ROOT_PASSWORD!.length).toBeGreaterThanOrEqual(8); // MinIO refuses shorter ones
  });

  it('registers the namespace and every custom search attribute of the upload workflow, with its type, in the namespace the worker uses', () => {
    const adminTools = services['temporal-admin-tools']!;
    const script = commandText(adminTools);
    expect(script).toContain('temporal operator namespace create --namespace "$TEMPORAL_NAMESPACE"');
    expect((adminTools.depends_on as Record<string, { condition?: string }>).temporal?.condition).toBe('service_healthy');
    const registered = Object.fromEntries([...script.matchAll(/^\s*register\s+(\w+)\s+(\w+)\s*$/gm)].map((m) => [m[1]!, m[2]!]));
    expect(registered).toEqual(UPLOAD_SEARCH_ATTRIBUTE_TYPES);
    expect(script).toContain('temporal operator search-attribute create --name "$1" --type "$2"');
    const env = environmentOf(adminTools);
    expect(env.TEMPORAL_ADDRESS).toBe(workerEnv.TEMPORAL_ADDRESS);
    expect(env.TEMPORAL_NAMESPACE).toBe(workerEnv.TEMPORAL_NAMESPACE);
  });

  it('creates the uploads bucket in that MinIO', () => {
    const [name, setup] = serviceByImage('minio/mc:');
    const env = environmentOf(setup);
    // The script's own shell variables, expanded with the service's environment.
    const script = commandText(setup)
      .replace(/\$(\w+)/g, (_, v: string) => env[v] ?? '')
      .replace(/"/g, '');
    expect(script, name).toContain(
      `mc alias set local ${workerEnv.S3_ENDPOINT} ${workerEnv.S3_ACCESS_KEY_ID} ${workerEnv.S3_SECRET_ACCESS_KEY}`,
    );
    expect(script).toMatch(/mc mb --ignore-existing local\/uploads\b/);
  });

  it('starts the worker only after the search attributes and the bucket exist', () => {
    const dependsOn = worker.depends_on as Record<string, { condition?: string }>;
    const [minioSetup] = serviceByImage('minio/mc:');
    expect(dependsOn['temporal-admin-tools']?.condition).toBe('service_completed_successfully');
    expect(dependsOn[minioSetup]?.condition).toBe('service_completed_successfully');
  });

  it('mounts the allowed root into the worker', () => {
    const targets = (worker.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':')[1] : v.target));
    expect(targets).toContain(workerEnv.UPLOAD_SAGA_ALLOWED_ROOTS);
  });

  it('builds the worker from the project Dockerfile', () => {
    const context = typeof worker.build === 'string' ? worker.build : worker.build?.context;
    expect(context).toBe('.');
    expect(typeof worker.build === 'object' ? worker.build.dockerfile : undefined).toBeUndefined();
  });
});

describe('docker-compose.yml: Temporal on PostgreSQL without auto-setup', () => {
  const temporal = services.temporal!;
  const schema = services['temporal-schema']!;
  const temporalEnv = environmentOf(temporal);
  const schemaEnv = environmentOf(schema);
  const version = TEMPORAL_SERVER_VERSION.replace(/^v/, '');

  it('runs the server image at the version the tests on PostgreSQL build, and no deprecated auto-setup image', () => {
    expect(interpolate(temporal.image!)).toBe(`temporalio/server:${version}`);
    for (const [name, service] of Object.entries(services)) {
      expect(interpolate(service.image ?? ''), name).not.toMatch(/^temporalio\/auto-setup:/);
      if (interpolate(service.image ?? '').startsWith('temporalio/admin-tools:')) {
        expect(interpolate(service.image!), name).toMatch(new RegExp(`^temporalio/admin-tools:${version.replace(/\./g, '\\.')}-`));
      }
    }
  });

  it('sets up the schema of both stores once PostgreSQL is healthy, and starts the server only after that succeeded', () => {
    expect(interpolate(schema.image!)).toMatch(/^temporalio\/admin-tools:/);
    expect((schema.depends_on as Record<string, { condition?: string }>).postgresql?.condition).toBe('service_healthy');
    expect((temporal.depends_on as Record<string, { condition?: string }>)['temporal-schema']?.condition).toBe(
      'service_completed_successfully',
    );
    const script = commandText(schema);
    for (const step of ['create-database', 'setup-schema --version 0.0', 'update-schema --schema-name "$2"'])
      expect(script).toContain(step);
    const setups = [...script.matchAll(/^\s*setup\s+(\w+)\s+(\S+)\s*$/gm)].map((m) => [m[1], m[2]]);
    expect(setups).toEqual([
      [temporalEnv.DBNAME, 'postgresql/v12/temporal'],
      [temporalEnv.VISIBILITY_DBNAME, 'postgresql/v12/visibility'],
    ]);
  });

  it('gives the schema setup and the server the same PostgreSQL, user and password', () => {
    const postgresEnv = environmentOf(services.postgresql!);
    expect(schemaEnv).toMatchObject({ SQL_PLUGIN: temporalEnv.DB, SQL_HOST: temporalEnv.POSTGRES_SEEDS, SQL_PORT: temporalEnv.DB_PORT });
    expect(schemaEnv.SQL_USER).toBe(temporalEnv.POSTGRES_USER);
    expect(schemaEnv.SQL_USER).toBe(postgresEnv.POSTGRES_USER);
    expect(schemaEnv.SQL_PASSWORD).toBe(temporalEnv.POSTGRES_PWD);
    expect(schemaEnv.SQL_PASSWORD).toBe(postgresEnv.POSTGRES_PASSWORD);
    expect(containerPorts(services.postgresql!)).toContain(Number(temporalEnv.DB_PORT));
  });

  it('runs the server with the dynamic config the tests on PostgreSQL use', () => {
    const mount = (temporal.volumes ?? []).map(String).find((v) => v.includes('/etc/temporal/config/dynamicconfig/'));
    expect(mount).toBeDefined();
    const [hostPath, containerPath] = mount!.split(':');
    expect(containerPath).toBe(`/etc/temporal/${temporalEnv.DYNAMIC_CONFIG_FILE_PATH}`);
    const file = parse(readFileSync(path.join(ROOT, hostPath!), 'utf8')) as Record<string, { value: unknown }[]>;
    expect(Object.fromEntries(Object.entries(file).map(([key, [first]]) => [key, first?.value]))).toEqual(POSTGRES_DYNAMIC_CONFIG);
  });
});

describe('docker-compose.yml loaded by compose-go (as `docker compose` loads it)', () => {
  beforeAll(() => ensureServerBinary('compose-check'), SERVER_BUILD_WAIT_MS);

  /** Runs tools/compose-check on a file: its exit status, the project it printed, and its errors. */
  async function composeCheck(file: string): Promise<{ status: number | null; project: unknown; stderr: string }> {
    const checker = await ensureServerBinary('compose-check');
    const result = spawnSync(checker, [file], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
    return { status: result.status, project: result.status === 0 ? JSON.parse(result.stdout) : undefined, stderr: result.stderr };
  }

  it('loads without error, with every dependency, image and port resolved', async () => {
    const { status, project, stderr } = await composeCheck(path.join(ROOT, 'docker-compose.yml'));
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const loaded = project as {
      name: string;
      services: Record<string, { image?: string; depends_on?: Record<string, { condition: string }> }>;
    };
    expect(loaded.name).toBe('upload-saga');
    expect(Object.keys(loaded.services).sort()).toEqual(Object.keys(services).sort());
    expect(loaded.services.temporal?.image).toBe(interpolate(services.temporal!.image!));
    expect(loaded.services.temporal?.depends_on?.['temporal-schema']?.condition).toBe('service_completed_successfully');
    expect(loaded.services['gateway-2']?.depends_on?.worker?.condition).toBe('service_healthy');
  });

  it('fails on a file `docker compose` would refuse: a dependency on a missing service, a misspelt key', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'upload-saga-compose-'));
    try {
      const original = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
      const missingService = original.replace(
        '      temporal-schema:\n        condition: service_completed_successfully',
        '      temporal-schemas:\n        condition: service_completed_successfully',
      );
      const misspeltKey = original.replace("    healthcheck:\n      test: ['CMD', 'nc'", "    healthchek:\n      test: ['CMD', 'nc'");
      for (const [name, text] of [
        ['missing-service', missingService],
        ['misspelt-key', misspeltKey],
      ] as const) {
        expect(text, name).not.toBe(original);
        const file = path.join(dir, `${name}.yml`);
        await writeFile(file, text);
        const { status, stderr } = await composeCheck(file);
        expect(status, name).toBe(1);
        expect(stderr, name).toMatch(name === 'missing-service' ? /temporal-schemas/ : /healthchek/);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('docker-compose.yml: probes as healthchecks', () => {
  /** The URL a healthcheck's command fetches, and whether a non-2xx answer fails it. */
  function probedUrl(service: ComposeService): string | undefined {
    const test = service.healthcheck?.test;
    const text = Array.isArray(test) ? test.join(' ') : (test ?? '');
    expect(text, 'exits 1 unless the answer is ok').toMatch(/r\.ok \? 0 : 1/);
    return /fetch\('([^']+)'\)/.exec(text)?.[1];
  }

  it("the worker's healthcheck is its /readyz, on the health port it enables", () => {
    const config = loadConfig(workerEnv);
    expect(config.health?.port).toBeGreaterThan(0);
    expect(probedUrl(worker)).toBe(`http://127.0.0.1:${config.health!.port}/readyz`);
  });

  it("two gateway replicas run from the worker's image, each environment accepted as written, each healthcheck its /readyz", () => {
    const replicas = Object.keys(services).filter((name) => /^gateway-\d+$/.test(name));
    expect(replicas).toEqual(['gateway-1', 'gateway-2']);
    const publishedPorts = new Set<string>();
    for (const name of replicas) {
      const gateway = services[name]!;
      expect(gateway.build).toEqual(worker.build);
      expect(commandText(gateway)).toBe('node bin/upload-saga.cjs gateway');
      const env = environmentOf(gateway);
      const declared = new Set(CONFIG_VARIABLES.map((v) => v.name));
      expect(Object.keys(env).filter((variable) => !declared.has(variable))).toEqual([]);
      for (const variable of REQUIRED) expect(env[variable], variable).toBe(workerEnv[variable]);
      expect(() => loadConfig(env)).not.toThrow();
      const config = loadGatewayConfig(env);
      expect(config.host).toBe('0.0.0.0');
      expect(containerPorts(gateway)).toContain(config.port);
      expect(probedUrl(gateway)).toBe(`http://127.0.0.1:${config.port}/readyz`);
      expect((gateway.depends_on as Record<string, { condition?: string }>).worker?.condition).toBe('service_healthy');
      for (const port of gateway.ports ?? []) publishedPorts.add(String(port).split(':')[0]!);
    }
    expect(publishedPorts.size, 'each replica publishes a host port of its own').toBe(replicas.length);
  });
});

describe('docker-compose.yml: Redis, Prometheus and Jaeger', () => {
  const replicas = Object.keys(services).filter((name) => /^gateway-\d+$/.test(name));

  /** host:port of a redis:// URL, checked to name a service of this file exposing that port. */
  function redisService(url: string | undefined): string {
    expect(url).toBeDefined();
    const { hostname, port } = new URL(url!);
    expect(interpolate(services[hostname]?.image ?? '')).toMatch(/^redis:/);
    expect(containerPorts(services[hostname]!)).toContain(Number(port || 6379));
    return hostname;
  }

  it('every gateway replica and the worker share one Redis, which is healthy before they start', () => {
    const used = new Set<string>();
    for (const name of replicas) {
      used.add(redisService(environmentOf(services[name]!).UPLOAD_SAGA_GATEWAY_REDIS_URL));
      expect((services[name]!.depends_on as Record<string, { condition?: string }>).redis?.condition).toBe('service_healthy');
    }
    used.add(redisService(workerEnv.UPLOAD_SAGA_PROGRESS_REDIS_URL));
    expect([...used]).toEqual(['redis']);
    expect(loadConfig(workerEnv).progress?.redisUrl).toBe(workerEnv.UPLOAD_SAGA_PROGRESS_REDIS_URL);
  });

  it("Prometheus scrapes the worker's and every replica's metrics port and loads the alert rules it is given", () => {
    const [, prometheus] = serviceByImage('prom/prometheus:');
    const mount = (prometheus.volumes ?? []).map(String).find((v) => v.endsWith(':/etc/prometheus:ro'));
    expect(mount).toBe('./deploy/prometheus:/etc/prometheus:ro');
    expect(commandText(prometheus)).toContain('--config.file=/etc/prometheus/prometheus.yml');
    const scrape = parse(readFileSync(path.join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    for (const file of scrape.rule_files) expect(existsSync(path.join(ROOT, 'deploy/prometheus', file)), file).toBe(true);
    const targets = scrape.scrape_configs.flatMap((job) => job.static_configs.flatMap((c) => c.targets));
    const expected = [
      `worker:${loadConfig(workerEnv).metrics?.port}`,
      ...replicas.map((name) => `${name}:${loadConfig(environmentOf(services[name]!)).metrics?.gatewayPort}`),
    ];
    expect(targets.sort()).toEqual(expected.sort());
  });

  it('worker and gateways export traces over OTLP/HTTP to the Jaeger service, each under its own service name', () => {
    const [jaegerName, jaeger] = serviceByImage('cr.jaegertracing.io/jaegertracing/jaeger:');
    const names = new Set<string>();
    for (const env of [workerEnv, ...replicas.map((name) => environmentOf(services[name]!))]) {
      const url = new URL(env.OTEL_EXPORTER_OTLP_ENDPOINT!);
      expect(url.hostname).toBe(jaegerName);
      expect(containerPorts(jaeger)).toContain(Number(url.port));
      names.add(env.OTEL_SERVICE_NAME!);
    }
    expect([...names].sort()).toEqual(['upload-saga-gateway', 'upload-saga-worker']);
  });
});

describe('Dockerfile', () => {
  const dockerfile = path.join(ROOT, 'Dockerfile');
  const text = existsSync(dockerfile) ? readFileSync(dockerfile, 'utf8') : '';
  const instructions = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));

  it('exists, builds dist/ in a build stage and runs on Node 24 with the production dependencies only', () => {
    expect(existsSync(dockerfile)).toBe(true);
    const stages = instructions.filter((i) => i.startsWith('FROM '));
    expect(stages).toHaveLength(2);
    for (const stage of stages) expect(stage).toMatch(/^FROM node:24-bookworm-slim\b/);
    expect(instructions).toContain('COPY package.json package-lock.json ./');
    expect(instructions).toContain('RUN npm run build');
    expect(instructions.some((i) => /^RUN npm ci --omit=dev\b/.test(i))).toBe(true);
    expect(instructions).toContain('COPY --from=build /app/dist ./dist');
    // The image runs compiled JavaScript: tsx is a development tool.
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(pkg.dependencies.tsx).toBeUndefined();
  });

  it('runs the worker', () => {
    const cmd = instructions.filter((i) => i.startsWith('CMD ')).pop();
    expect(cmd).toBeDefined();
    const argv = JSON.parse(cmd!.slice(4)) as string[];
    expect(argv.join(' ')).toMatch(/^node (bin\/upload-saga\.cjs|dist\/cli\/main\.js) worker$/);
    // dist/cli/main.js is compiled from src/cli/main.ts by the build stage.
    expect(existsSync(path.join(ROOT, argv[1]!.replace(/^dist\/(.*)\.js$/, 'src/$1.ts')))).toBe(true);
    for (const copied of ['src', 'scripts']) expect(instructions).toContain(`COPY ${copied} ./${copied}`);
  });

  it('keeps local modules and history out of the build context', () => {
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', '.git']));
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts', 'bin', 'src'])
      expect(ignored).not.toContain(needed);
  });
});
