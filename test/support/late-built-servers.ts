/**
 * How long a `beforeAll` that starts a server no global setup starts (Jaeger, tusd, toxiproxy,
 * compose-check) may wait for its build: on a new machine CI builds those servers at low priority
 * while `npm test` runs (.ci/run), and the files that need them run last (vitest.config.mts's
 * sequencer). With the binaries cached nothing waits.
 */
export const SERVER_BUILD_WAIT_MS = 45 * 60_000;
