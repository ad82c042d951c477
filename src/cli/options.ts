/**
 * Parsers for option values, in the shape commander expects (`(value, previous) => parsed`).
 *
 * Why here: each throws commander's `InvalidArgumentError`, so a bad value is reported like any
 * other usage error ("option '--part-size <size>' argument '8 bananas' is invalid. …") and exits
 * with the usage code before anything connects. Sizes reuse `parseByteSize` from the config
 * module, so `--part-size 8MiB` and `UPLOAD_SAGA_QUOTA_DEFAULT=500GiB` accept the same spellings.
 */
import { InvalidArgumentError } from 'commander';
import { parseByteSize } from '../config';

/** `"8MiB"` → 8388608. Binary (KiB…TiB) and decimal (KB…TB) units; a bare number is bytes. */
export function parseSizeOption(value: string): number {
  const bytes = parseByteSize(value);
  if (bytes === undefined) throw new InvalidArgumentError('not a size; use e.g. 8MiB, 64MiB, 1GiB or a number of bytes.');
  return bytes;
}

/** A whole number ≥ 1. */
export function parsePositiveIntOption(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number ≥ 1.');
  return n;
}

/** Collects repeated `--meta key=value` options into one record (later keys win). */
export function collectKeyValue(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('must be key=value, e.g. --meta project=apollo.');
  return { ...previous, [value.slice(0, eq).trim()]: value.slice(eq + 1) };
}

/** `"1h"`, `"90m"`, `"30s"`, `"2d"` → milliseconds. */
export function parseDurationOption(value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(value);
  if (!match) throw new InvalidArgumentError('not a duration; use e.g. 30s, 15m, 1h or 2d.');
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(match[1]) * unit);
}

/** A TCP port, 0–65535 (0: any free port). */
export function parsePortOption(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 65535) throw new InvalidArgumentError('must be a port number, 0–65535.');
  return n;
}

/** Collects repeated `--ui-origin` options as origins (`http://host:port`); a path is dropped. */
export function collectOrigin(value: string, previous: string[] = []): string[] {
  let origin: string;
  try {
    origin = new URL(value).origin;
  } catch {
    throw new InvalidArgumentError('must be a URL such as http://localhost:8233.');
  }
  if (origin === 'null') throw new InvalidArgumentError('must be an http:// or https:// URL such as http://localhost:8233.');
  return [...previous, origin];
}

/** Commander collector for a repeatable option: each use adds one value. */
export function collectValue(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
