/**
 * The test files that start a server none of the projects' global setups starts (Jaeger, tusd,
 * toxiproxy, compose-check), and the vitest sequencer that runs them last.
 *
 * Why: on a new machine CI builds those servers at low priority while `npm test` runs (see
 * .ci/run and scripts/ensure-servers.ts); a file that needs one waits for its build lock in its
 * `beforeAll`. Running these files last gives the builds the whole run to finish, and
 * {@link SERVER_BUILD_WAIT_MS} lets their hooks wait for a build still under way instead of
 * failing at the usual hook timeout. With the binaries cached, nothing waits and only the order
 * changes.
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Files (relative to the repository root) whose hooks start a late-built server. */
export const LATE_BUILT_SERVER_FILES: readonly string[] = [
  'test/telemetry/trace.test.ts', // jaeger
  'test/gateway/tus-conformance.test.ts', // tusd
  'test/gateway/resumable-upload.test.ts', // tusd
  'test/faults/fault-helpers.test.ts', // toxiproxy-server
  'test/compose.test.ts', // compose-check
];

/** How long a hook that starts a late-built server may wait for its build (a new machine's Jaeger build, at low priority). */
export const SERVER_BUILD_WAIT_MS = 45 * 60_000;

/** vitest's default order, then the {@link LATE_BUILT_SERVER_FILES} at the end (in the order listed). */
export class LateBuiltServersLast extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (spec: TestSpecification): number => {
      const relative = spec.moduleId.slice(spec.project.config.root.length + 1).replaceAll('\\', '/');
      return LATE_BUILT_SERVER_FILES.indexOf(relative);
    };
    const early = sorted.filter((spec) => rank(spec) < 0);
    const late = sorted.filter((spec) => rank(spec) >= 0).sort((a, b) => rank(a) - rank(b));
    return [...early, ...late];
  }
}
