/**
 * The worker process of the fault suite: `src/worker.ts`'s `runWorkerFromEnv`, with the workflow
 * bundle the runner built once (its path in `FAULTS_WORKFLOW_BUNDLE`).
 *
 * Why: a scenario starts up to three workers, and bundling the workflows takes each one 15 s of
 * CPU on an idle 2-core machine (a minute under load); everything else is the production path.
 */
import { runWorkerFromEnv } from '../../src/worker';

const codePath = process.env.FAULTS_WORKFLOW_BUNDLE;
runWorkerFromEnv(process.env, codePath ? { workflowBundle: { codePath } } : {}).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
