/**
 * docker-compose.yml and the Dockerfile, checked against the code they deploy — Docker cannot run
 * here, so the file is parsed and each promise it makes is checked statically:
 * the worker's environment is exactly what `loadConfig` reads and accepts, its addresses point at
 * services that exist on the right ports, the admin-tools service registers every search
 * attribute the workflow sets (with the right type), the bucket exists, and the image runs the worker.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../src/config';
import { loadGatewayConfig } from '../src/gateway/config';
import { UPLOAD_SEARCH_ATTRIBUTE_TYPES } from '../src/upload/search-attributes';

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
      expect.arrayContaining(['postgresql', 'temporal', 'temporal-admin-tools', 'temporal-ui', 'minio', 'minio-setup', 'worker']),
    );
    expect(interpolate(services.temporal!.image!)).toMatch(/^temporalio\/auto-setup:/);
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
    expect(interpolate(temporal!.image!)).toMatch(/^temporalio\/(auto-setup|server):/);
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

  it('registers every custom search attribute of the upload workflow, with its type, in the namespace the worker uses', () => {
    const [, adminTools] = serviceByImage('temporalio/admin-tools:');
    const script = commandText(adminTools);
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
    const [adminTools] = serviceByImage('temporalio/admin-tools:');
    const [minioSetup] = serviceByImage('minio/mc:');
    expect(dependsOn[adminTools]?.condition).toBe('service_completed_successfully');
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
