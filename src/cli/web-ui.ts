/**
 * Links into the Temporal Web UI for an upload's workflow.
 *
 * Why the base URL comes from its own variable: the UI is a separate service whose address the
 * worker never needs (so it is not part of the worker's config), and it differs per setup — the
 * dev server serves it on 8233, docker-compose.yml publishes it on the same port, a cloud
 * namespace has its own. The URL layout itself is owned by `workflowUiUrl` in src/embedded.
 */
import { workflowUiUrl } from '../embedded';

/** Environment variable holding the Web UI base URL (read by the CLI only). */
export const TEMPORAL_UI_URL_VARIABLE = 'TEMPORAL_UI_URL';
/** The Web UI of `temporal server start-dev` and of docker-compose.yml. */
export const DEFAULT_TEMPORAL_UI_URL = 'http://localhost:8233';

/** The Web UI base URL from `TEMPORAL_UI_URL`, or {@link DEFAULT_TEMPORAL_UI_URL}. */
export function webUiBaseUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env[TEMPORAL_UI_URL_VARIABLE]?.trim() || DEFAULT_TEMPORAL_UI_URL;
}

/** Options of {@link uploadUiLink}. */
export interface UploadUiLinkOptions {
  workflowId: string;
  namespace: string;
  /** A specific run; without it the UI shows the latest run. */
  runId?: string;
  /** @default webUiBaseUrl(process.env) */
  uiUrl?: string;
}

/** The Web UI page of one upload's workflow. */
export function uploadUiLink(options: UploadUiLinkOptions): string {
  return workflowUiUrl({
    uiUrl: options.uiUrl ?? webUiBaseUrl(),
    namespace: options.namespace,
    workflowId: options.workflowId,
    ...(options.runId ? { runId: options.runId } : {}),
  });
}
