/**
 * What the CLI prints about an upload: the result of a completed one, the saga's report of a
 * failed one, and a one-screen status.
 *
 * Why a module of its own: `upload`, `status`, `cancel --wait` and `demo` all print these, and
 * the failure report is the one place a person learns what the saga undid — it must read the
 * same everywhere. Functions return lines; callers decide the stream.
 */
import type { LiveProgress, UploadFailedError } from '../client';
import type { UploadResult } from '../upload/outcome';
import type { SagaFailureReport } from '../saga/workflow';
import { formatBytes, formatDuration } from './format';

/** Two-column "label  value" lines with aligned values. */
export function labelled(pairs: readonly (readonly [string, string | undefined])[], indent = '  '): string[] {
  const present = pairs.filter((pair): pair is readonly [string, string] => pair[1] !== undefined);
  const width = Math.max(0, ...present.map(([label]) => label.length));
  return present.map(([label, value]) => `${indent}${label.padEnd(width)}  ${value}`);
}

/** Lines describing a completed upload. `uiLink` is the Web UI page of its workflow. */
export function resultLines(result: UploadResult, extra: { uiLink?: string } = {}): string[] {
  const seconds = Object.values(result.timings).reduce((sum, ms) => sum + ms, 0) / 1000;
  return [
    `uploaded s3://${result.bucket}/${result.key}`,
    ...labelled([
      ['bucket', result.bucket],
      ['key', result.key],
      ['size', `${formatBytes(result.size)} (${result.size} bytes)`],
      ['etag', result.etag],
      ['checksum', result.checksum ? `${result.checksum.algorithm} ${result.checksum.value}` : undefined],
      ['sha256', result.sha256],
      [
        'parts',
        `${result.partCount} × ${formatBytes(result.partSize)}${result.partSizeAdjusted ? ` (raised from ${formatBytes(result.partSizeAdjusted.requestedPartSize)}: ${result.partSizeAdjusted.reason})` : ''}`,
      ],
      ['version', result.versionId],
      ['took', seconds > 0 ? formatDuration(seconds) : undefined],
      [
        'webhook',
        result.notification.status === 'not-requested'
          ? undefined
          : `${result.notification.status}${result.notification.error ? ` (${result.notification.error})` : ''}`,
      ],
      ['workflow id', result.workflowId],
      ['web ui', extra.uiLink],
    ]),
  ];
}

/** Lines of the saga's failure report: failed step, cause, each compensation's outcome. */
export function sagaReportLines(report: SagaFailureReport, indent = '  '): string[] {
  const lines = labelled(
    [
      [report.cancelled ? 'cancelled in' : 'failed step', report.failedStep],
      ['cause', `${report.cause.type}: ${report.cause.message}`],
    ],
    indent,
  );
  if (report.afterPivot) {
    lines.push(`${indent}after the pivot: the object was already merged, so nothing was compensated`);
  } else if (report.compensations.length === 0) {
    lines.push(`${indent}compensations: none needed (nothing had been done yet)`);
  } else {
    lines.push(`${indent}compensations:`);
    for (const c of report.compensations) {
      lines.push(`${indent}  - ${c.step} (${c.activity}): ${c.status}${c.error ? ` — ${c.error.type}: ${c.error.message}` : ''}`);
    }
  }
  return lines;
}

/** One sentence on how an upload ended, from its outcome and the saga's report. */
export function failureHeadline(outcome: UploadFailedError['outcome'], report: SagaFailureReport): string {
  const what = outcome === 'cancelled' ? 'upload cancelled' : 'upload failed';
  if (report.afterPivot) return `${what} after the object was merged`;
  if (report.compensations.length === 0) return `${what}; nothing had been done, so nothing was undone`;
  if (report.compensations.every((c) => c.status === 'compensated')) return `${what}; the saga undid every step it had taken`;
  return `${what}; some steps could NOT be undone (see below)`;
}

/** Lines for an upload that did not complete. */
export function failureReportLines(error: UploadFailedError, extra: { workflowId?: string; uiLink?: string } = {}): string[] {
  const lines = error.report
    ? [`${failureHeadline(error.outcome, error.report)}:`, ...sagaReportLines(error.report)]
    : [
        `upload ${error.outcome}: ${error.message}`,
        error.outcome === 'cancelled'
          ? "  (a cancelled upload's report is read with a query, and no worker answered it)"
          : '  (no saga report: the workflow ended before the saga could record one)',
      ];
  lines.push(
    ...labelled([
      ['workflow id', extra.workflowId],
      ['web ui', extra.uiLink],
    ]),
  );
  return lines;
}

/** One line of live progress: `upload-parts 37.5% · 24.0 MiB / 64.0 MiB · parts 3/8`. */
export function progressLine(progress: LiveProgress): string {
  const total = progress.totalBytes;
  const percent = total ? ` ${((100 * progress.bytesDone) / total).toFixed(1)}%` : '';
  const bytes = `${formatBytes(progress.bytesDone)} / ${total === undefined ? '?' : formatBytes(total)}`;
  const parts = `parts ${progress.partsDone}/${progress.totalParts ?? '?'}`;
  return `${progress.phase}${percent} · ${bytes} · ${parts}`;
}
