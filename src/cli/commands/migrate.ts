/**
 * `upload-saga migrate s3://src-bucket/prefix/ --bucket dst --prefix p/ --tenant t [--profile x]`:
 * every object under the source prefix copied under the destination prefix as ONE migration (a
 * durable orchestration on the worker), skipping objects already there, with a summary of copied,
 * skipped and failed objects at the end and, with `--report file.jsonl`, the per-object report.
 *
 * As for batches: the request is validated here first (exit 2 before connecting); Ctrl-C detaches
 * (the migration goes on; re-running with the same `--migration-id` attaches to it).
 */
import { writeFile } from 'node:fs/promises';
import { BatchClient } from '../../batch-client';
import { createS3Client } from '../../connections';
import { MigrationFailedError, readMigrationReport } from '../../migration-client';
import { findMigrationProblems } from '../../migration/migration-request';
import {
  migrationWorkflowId,
  type MigrationFailure,
  type MigrationCounts,
  type MigrationRequest,
  type MigrationResult,
} from '../../migration/migration-types';
import type { ChecksumAlgorithm } from '../../upload/request-types';
import { withUploads } from '../connect';
import { CliError, ExitCode, UsageError } from '../errors';
import { formatBytes } from '../format';
import { note, out, type CliIo } from '../io';
import { waitForShutdownSignal } from '../signals';
import { defaultUploadId } from '../upload-id';

/** Options of `migrate`. */
export interface MigrateOptions {
  bucket: string;
  tenant: string;
  prefix?: string;
  profile?: string;
  migrationId?: string;
  checksum?: ChecksumAlgorithm;
  objectsPerChunk?: number;
  concurrency?: number;
  report?: string;
  wait?: boolean;
}

/** `s3://bucket/prefix` as bucket and prefix ("" when only the bucket is given). */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!match) throw new UsageError(`the source must be s3://bucket/prefix, got ${JSON.stringify(url)}`);
  return { bucket: match[1]!, prefix: match[2]! };
}

/** The migration the arguments describe (not yet validated). */
export function buildMigrationRequest(sourceUrl: string, options: MigrateOptions): MigrationRequest {
  const { bucket, prefix } = parseS3Url(sourceUrl);
  return {
    migrationId: options.migrationId ?? defaultUploadId(`migration-${bucket}`),
    tenant: options.tenant,
    source: { bucket, prefix, ...(options.profile ? { profile: options.profile } : {}) },
    destination: { bucket: options.bucket, prefix: options.prefix ?? '' },
    ...(options.checksum ? { checksumAlgorithm: options.checksum } : {}),
    ...(options.objectsPerChunk !== undefined ? { objectsPerChunk: options.objectsPerChunk } : {}),
    ...(options.concurrency !== undefined ? { objectConcurrency: options.concurrency } : {}),
  };
}

/** The end-of-migration summary: copied, skipped, failed (grouped by type, a few keys each). */
export function migrationSummaryLines(summary: MigrationCounts & { failures: MigrationFailure[] }, shownPerType = 5): string[] {
  const lines = [
    `copied: ${summary.objectsCopied} objects, ${formatBytes(summary.bytesCopied)}`,
    `skipped (already there): ${summary.objectsSkipped} objects, ${formatBytes(summary.bytesSkipped)}`,
  ];
  if (summary.objectsFailed === 0) return lines;
  lines.push(`failed: ${summary.objectsFailed} objects`);
  const byType = new Map<string, MigrationFailure[]>();
  for (const f of summary.failures) byType.set(f.type, [...(byType.get(f.type) ?? []), f]);
  for (const [type, failures] of byType) {
    lines.push(`  ${type}: ${failures.length}${summary.failures.length < summary.objectsFailed ? '+' : ''}`);
    for (const f of failures.slice(0, shownPerType)) lines.push(`    ${f.path}: ${f.message}`);
    if (failures.length > shownPerType) lines.push(`    … and ${failures.length - shownPerType} more`);
  }
  return lines;
}

/**
 * Runs the migration and prints its summary to stdout.
 * @throws UsageError (exit 2) before connecting, CliError for a migration that stopped or partly failed
 */
export async function runMigrate(sourceUrl: string, options: MigrateOptions, io: CliIo): Promise<MigrationResult | undefined> {
  const request = buildMigrationRequest(sourceUrl, options);
  const problems = findMigrationProblems(request);
  if (problems.length)
    throw new UsageError(
      'invalid migration request:',
      problems.map((p) => `  - ${p.field}: ${p.message}`),
    );
  const workflowId = migrationWorkflowId(request.tenant, request.migrationId);
  return withUploads(io.env, async ({ client, config }) => {
    const handle = await new BatchClient({ client, taskQueue: config.temporal.taskQueue }).migrate(request);
    if (options.wait === false) {
      out(io, `started ${workflowId}`);
      return undefined;
    }
    note(io, `migration ${sourceUrl} → s3://${request.destination.bucket}/${request.destination.prefix}`, `workflow ${workflowId}`);
    const interrupt = waitForShutdownSignal();
    try {
      const detached = interrupt.received.then((signal) => {
        throw new CliError(`\n${signal}: detached; the migration continues on the worker`, ExitCode.Interrupted, [
          `  workflow ${workflowId}`,
        ]);
      });
      const result = await Promise.race([handle.result(), detached]);
      out(io, `${result.outcome}: migration ${request.migrationId}`, ...migrationSummaryLines(result));
      if (options.report) {
        const s3 = createS3Client(config.s3);
        try {
          const lines: string[] = [];
          for await (const line of readMigrationReport(s3, result.destination.bucket, result.reportPrefix))
            lines.push(JSON.stringify(line));
          await writeFile(options.report, lines.join('\n') + '\n');
          out(io, `report: ${lines.length} objects → ${options.report}`);
        } finally {
          s3.destroy();
        }
      }
      if (result.outcome === 'partial') throw new CliError(`${result.objectsFailed} objects failed (listed above)`, ExitCode.Failure);
      return result;
    } catch (error) {
      if (error instanceof MigrationFailedError)
        throw new CliError(
          `${error.outcome}: ${error.message}`,
          ExitCode.Failure,
          error.summary ? migrationSummaryLines(error.summary) : [],
          {
            cause: error,
          },
        );
      throw error;
    } finally {
      interrupt.dispose();
    }
  });
}
