/**
 * The saga engine's workflow-side public surface. Deterministic: safe to import from workflow code.
 */
export {
  defineSaga,
  type SagaDefinition,
  type StepDefinition,
  type StepRetryPolicy,
  type StepTimeouts,
  type ActivityCallDefinition,
  type WorkflowActionDefinition,
} from './definition';
export {
  PIVOT_NOT_CANCELLABLE_PATCH,
  Saga,
  type SagaOptions,
  type SagaState,
  type StepOutcome,
  type RunOptions,
  type StepStatus,
} from './saga';
export {
  describeReport,
  summarizeFailure,
  failureTypeForStep,
  type SagaFailureReport,
  type CompensationOutcome,
  type CompensationStatus,
  type FailureSummary,
} from './failure-report';
export type { JitterMode } from '../shared/backoff';
