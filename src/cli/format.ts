/**
 * Human-readable numbers and tables for terminal output.
 *
 * Why a module of its own: the progress bar, the result summary, `status` and `list` all show
 * sizes, rates and durations, and they must agree on units (binary: KiB, MiB, GiB — the same units
 * `--part-size` and the config accept). Plain functions, no terminal state, so they are trivial
 * to test and reuse.
 */

const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** `12582912` → `"12.0 MiB"`. Bytes below 1 KiB are printed exactly. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '?';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BINARY_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${BINARY_UNITS[unit]}`;
}

/** Bytes per second → `"45.2 MiB/s"`; `"–"` when unknown. */
export function formatRate(bytesPerSecond: number | undefined): string {
  if (bytesPerSecond === undefined || !Number.isFinite(bytesPerSecond)) return '–';
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** Seconds → `"42s"`, `"3m05s"`, `"1h02m"`; `"–"` when unknown. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Options of {@link renderTable}. */
export interface TableOptions {
  /** Text for cells that are `undefined` or empty. @default '-' */
  empty?: string;
  /** Spaces between columns. @default 2 */
  gap?: number;
}

/**
 * A plain-text table: a header row and left-aligned columns sized to their widest cell.
 * Returns the lines without trailing newline characters.
 */
export function renderTable(
  headers: readonly string[],
  rows: readonly (readonly (string | undefined)[])[],
  options: TableOptions = {},
): string[] {
  const empty = options.empty ?? '-';
  const gap = ' '.repeat(options.gap ?? 2);
  const cells = rows.map((row) => headers.map((_, i) => (row[i] === undefined || row[i] === '' ? empty : row[i]!)));
  const widths = headers.map((header, i) => Math.max(header.length, ...cells.map((row) => row[i]!.length)));
  const line = (row: readonly string[]) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join(gap)
      .trimEnd();
  return [line(headers), ...cells.map(line)];
}
