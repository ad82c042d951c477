/**
 * The messages of the gateway-upload workflow (queries and updates), shared by the workflow that
 * handles them and the gateway that sends them: a module outside src/workflows, so the gateway
 * never imports workflow code. Message names are recorded in histories and used by running
 * workflows: they never change.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { SagaState } from '../saga/workflow';
import type { ChunkRecord, ClientPart, ClientUploadInput, ClientUploadState } from './client-upload';
import type { UploadProgress, UploadResult } from './outcome';

/** The workflow's signature, for typed handles and starts (`WorkflowHandle<ClientUploadWorkflow>`). */
export type ClientUploadWorkflow = (input: ClientUploadInput) => Promise<UploadResult>;

/** The upload's durable state (offset, parts, phase, outcome, expiry…). */
export const clientUploadStateQuery = defineQuery<ClientUploadState>('clientUploadState');
/** The same shape as the upload workflow's progress query, for tools that show both. */
export const clientUploadProgressQuery = defineQuery<UploadProgress>('progress');
export const clientUploadSagaStateQuery = defineQuery<SagaState>('sagaState');
/** Returns once the multipart upload is open (or the saga ended): what `create` waits for. */
export const waitUntilOpenUpdate = defineUpdate<ClientUploadState>('waitUntilOpen');
/** tus: a gateway records the bytes it wrote. Rejected (no history) unless it starts at the recorded offset. */
export const recordChunkUpdate = defineUpdate<ClientUploadState, [ChunkRecord]>('recordChunk');
/** Presigned: the client finished sending parts; verify and merge them. */
export const completeUpdate = defineUpdate<ClientUploadState, [{ parts: ClientPart[] }]>('complete');

/** Updates one run handles before continuing as new. */
export const DEFAULT_UPDATES_PER_RUN = 500;
