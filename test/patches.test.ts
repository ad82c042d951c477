/**
 * The patch registry (src/patches.ts) is the one place patch ids are declared: these tests fail
 * when workflow code asks an id inline, when a recorded history holds a patch the registry does not
 * know, or when an id has no story in docs/explanation/workflow-patches.md.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as patches from '../src/patches';

const root = path.join(__dirname, '..');
const registryIds = Object.values(patches.WORKFLOW_PATCHES).map((patch) => patch.id);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

describe('the patch registry', () => {
  it('declares each id once, with a since date and a one-line invariant', () => {
    expect(new Set(registryIds).size).toBe(registryIds.length);
    for (const patch of Object.values(patches.WORKFLOW_PATCHES)) {
      expect(patch.since, patch.id).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(patch.guards.length, patch.id).toBeGreaterThan(20);
      expect(patch.guards, patch.id).not.toContain('\n');
    }
  });

  it('is where every patched() call in src/ takes its id from', () => {
    const exported = new Map<string, string>();
    for (const [name, value] of Object.entries(patches)) if (typeof value === 'string') exported.set(name, value);
    const calls: string[] = [];
    for (const file of sourceFiles(path.join(root, 'src'))) {
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(/\b(?:patched|deprecatePatch)\(\s*([^)\s][^)]*?)\s*\)/g)) {
        const argument = match[1]!;
        const where = `${path.relative(root, file)}: patched(${argument})`;
        calls.push(where);
        expect(exported.has(argument), `${where} must name a constant of src/patches.ts`).toBe(true);
        expect(registryIds, where).toContain(exported.get(argument));
        expect(text, `${where}: the constant must come from the registry`).toMatch(/from '(?:\.\.\/)+patches'/);
      }
    }
    // The engine asks two, the upload workflow four: a scan that finds nothing proves nothing.
    expect(calls.length).toBeGreaterThanOrEqual(registryIds.length);
  });

  it('knows every patch recorded in the committed histories', () => {
    const dir = path.join(root, 'test', 'histories');
    const recorded = new Set<string>();
    for (const file of readdirSync(dir).filter((name) => name.endsWith('.json'))) {
      const history = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as { events: Array<Record<string, unknown>> };
      for (const event of history.events) {
        const marker = event.markerRecordedEventAttributes as
          { markerName: string; details: { 'patch-data': { payloads: Array<{ data: string }> } } } | undefined;
        if (marker?.markerName !== 'core_patch') continue;
        const data = JSON.parse(Buffer.from(marker.details['patch-data'].payloads[0]!.data, 'base64').toString('utf8')) as { id: string };
        recorded.add(data.id);
      }
    }
    expect(recorded.size).toBeGreaterThan(0);
    for (const id of recorded) expect(registryIds, `history marker ${id}`).toContain(id);
  });

  it('has a section for every id in docs/explanation/workflow-patches.md', () => {
    const doc = readFileSync(path.join(root, 'docs', 'explanation', 'workflow-patches.md'), 'utf8');
    const sections = [...doc.matchAll(/^## `([a-z-]+)`$/gm)].map((match) => match[1]);
    expect(sections.sort()).toEqual([...registryIds].sort());
  });
});
