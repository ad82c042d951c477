/**
 * Public surface of the embedded stack: real Temporal (dev server, or the server on PostgreSQL)
 * and S3 servers (MinIO or versitygw; and toxiproxy, for fault injection) built from Go modules and run as child processes, for tests, the demo and the
 * `stack` CLI command.
 *
 * Why a barrel: callers import from `src/embedded` only; the one-job modules behind it
 * (binaries, process management, ports, exit cleanup) can be reshuffled freely.
 */
export { EmbeddedStackError } from './errors';
export {
  BuildLockTimeoutError,
  CACHE_DIR_ENV_VAR,
  GoToolchainNotFoundError,
  JAEGER_MODULE,
  JAEGER_VERSION,
  MINIO_MODULE,
  MINIO_VERSION,
  SERVER_BINARIES,
  ServerBinaryBuildError,
  ServerBinaryNotExecutableError,
  ServerBinaryNotFoundError,
  TEMPORAL_CLI_MODULE,
  TEMPORAL_CLI_VERSION,
  TEMPORAL_SERVER_MODULE,
  TEMPORAL_SERVER_VERSION,
  TEMPORAL_SQL_TOOL_MODULE,
  TOXIPROXY_MODULE,
  TOXIPROXY_VERSION,
  TUSD_MODULE,
  TUSD_VERSION,
  VERSITYGW_MODULE,
  VERSITYGW_VERSION,
  defaultCacheDir,
  ensureServerBinary,
  findServerBinary,
  type BinarySource,
  type EnsureServerBinaryOptions,
  type FoundBinary,
  type GoBuildMode,
  type ProgressLogger,
  type ServerBinaryName,
  type ServerBinarySpec,
} from './binaries';
export {
  TemporalDevServerExitedError,
  TemporalDevServerTimeoutError,
  startTemporalDevServer,
  workflowUiUrl,
  type TemporalDevServer,
  type TemporalDevServerOptions,
  type WorkflowUiTarget,
} from './temporal-dev-server';
export { InvalidSearchAttributeError, SearchAttributeTypeConflictError, type SearchAttributeTypeName } from './search-attributes';
export type { TemporalServerOptions, TemporalServerProcess } from './temporal-server-process';
export {
  DEFAULT_MINIO_ROOT_PASSWORD,
  DEFAULT_MINIO_ROOT_USER,
  InvalidMinioCredentialsError,
  MINIO_REGION,
  MinioServerExitedError,
  MinioServerTimeoutError,
  startMinioServer,
  type MinioServer,
  type MinioServerOptions,
} from './minio-server';
export {
  ToxiproxyApiError,
  ToxiproxyClient,
  ToxiproxyProxy,
  ToxiproxyServerExitedError,
  ToxiproxyServerTimeoutError,
  startToxiproxyServer,
  type AddToxicOptions,
  type CreateProxyOptions,
  type ProxyState,
  type Toxic,
  type ToxicSpec,
  type ToxicStream,
  type ToxicType,
  type ToxiproxyClientOptions,
  type ToxiproxyServer,
  type ToxiproxyServerOptions,
} from './toxiproxy';
export { S3_STORE_KINDS, STORE_RULES_ENV, type EmbeddedS3Store, type S3StoreKind } from './s3-store';
export {
  DEFAULT_VERSITYGW_ACCESS_KEY,
  DEFAULT_VERSITYGW_SECRET_KEY,
  VERSITYGW_REGION,
  VersitygwServerExitedError,
  VersitygwServerTimeoutError,
  startVersitygwServer,
  type VersitygwServerOptions,
} from './versitygw-server';
export { JaegerExitedError, JaegerTimeoutError, jaegerConfig, startJaeger, type JaegerOptions, type JaegerServer } from './jaeger';
export { ensureBuckets, s3ClientConfig, type S3EndpointInfo } from './s3-buckets';
export {
  EmbeddedStackStopError,
  startEmbeddedStack,
  type EmbeddedStack,
  type EmbeddedStackOptions,
  type EmbeddedTemporal,
  type EmbeddedTemporalKind,
} from './stack';
export {
  POSTGRES_DYNAMIC_CONFIG,
  TemporalPostgresServerExitedError,
  TemporalPostgresServerTimeoutError,
  TemporalSqlToolError,
  startTemporalPostgresServer,
  type PostgresConnection,
  type TemporalPostgresDatabases,
  type TemporalPostgresServer,
  type TemporalPostgresServerOptions,
} from './temporal-postgres-server';
export { ProcessSpawnError, type ProcessExit, type RunningServerProcess } from './managed-process';
export { arePortsFree, findFreePort, findFreePorts } from './free-port';
export {
  TusdServerExitedError,
  TusdServerTimeoutError,
  startTusdServer,
  type TusdS3StoreOptions,
  type TusdServer,
  type TusdServerOptions,
} from './tusd';
