/**
 * The shape of one documented environment variable. A module of its own so that the lists of
 * variables (src/config.ts, src/gateway/config-variables.ts) can share it without importing each
 * other: config.ts includes the gateway's list, so the gateway's list must not import config.ts.
 */

/** One environment variable: what the README table and the CLI's --help show. */
export interface ConfigVariable {
  name: string;
  description: string;
  /** The value used when it is unset, as shown to people. */
  default?: string;
  /** Never printed (tokens, keys, URLs with credentials). */
  secret?: boolean;
}
