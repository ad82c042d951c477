/**
 * The messages of the gateway-upload workflow (queries and updates), shared by the workflow that
 * handles them and the gateway that sends them: a module outside src/workflows, so the gateway
 * never imports workflow code. Message names are recorded in histories and used by running
 * workflows: they never change.
 */
import { WIRE_NAMES } from './wire-names';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { SagaState } from '../saga/workflow';
import type { ChunkRecord, GatewayPart, GatewayUploadInput, GatewayUploadState, PartReport } from './gateway-upload';
import type { UploadProgress, UploadResult } from './outcome';

/** The workflow's signature, for typed handles and starts (`WorkflowHandle<GatewayUploadWorkflow>`). */
export type GatewayUploadWorkflow = (input: GatewayUploadInput) => Promise<UploadResult>;

/** The upload's durable state (offset, parts, phase, outcome, expiry…). */
export const gatewayUploadStateQuery = defineQuery<GatewayUploadState>(WIRE_NAMES.gatewayUploadStateQuery);
/** The same shape as the upload workflow's progress query, for tools that show both. */
export const gatewayUploadProgressQuery = defineQuery<UploadProgress>('progress');
export const gatewayUploadSagaStateQuery = defineQuery<SagaState>('sagaState');
/** Returns once the multipart upload is open (or the saga ended): what `create` waits for. */
export const waitUntilOpenUpdate = defineUpdate<GatewayUploadState>('waitUntilOpen');
/** tus: a gateway records the bytes it wrote. Rejected (no history) unless it starts at the recorded offset. */
export const recordChunkUpdate = defineUpdate<GatewayUploadState, [ChunkRecord]>('recordChunk');
/**
 * Presigned: the client reports a finished part (the gateway confirmed it with ListParts first);
 * the upload's offset and part count follow, so progress needs no polling of S3. Rejected (no
 * history) when the upload does not receive parts or the part is outside its length.
 */
export const recordPartUpdate = defineUpdate<GatewayUploadState, [PartReport]>('recordPart');
/**
 * tus, deferred length: a gateway declares the length a PATCH carried (`Upload-Length`). Rejected
 * (no history) unless the length is still unknown and fits; returns once the reservation was shrunk to it.
 */
export const declareLengthUpdate = defineUpdate<GatewayUploadState, [{ length: number }]>('declareLength');
/** Presigned: the client finished sending parts; verify and merge them. */
export const completeUpdate = defineUpdate<GatewayUploadState, [{ parts: GatewayPart[] }]>('complete');

/**
 * tus concatenation: a final claims a finished partial before joining it. Rejected (no history)
 * unless the partial is stored and unclaimed, or claimed by the same final (a repeated claim).
 */
export const claimPartialUpdate = defineUpdate<GatewayUploadState, [{ finalUploadId: string }]>('claimPartial');
/**
 * tus concatenation, termination (DELETE) of a partial: from its acceptance on no final may claim
 * the partial, so the cancellation the gateway sends next cannot undo bytes a final joins. Rejected
 * (no history) while a final claims it or once one joined it. No command, so runs that never
 * receive it replay unchanged; a worker of an earlier version rejects it as unknown.
 */
export const withdrawPartialUpdate = defineUpdate<GatewayUploadState>('withdrawPartial');
/**
 * tus concatenation: answers once the partial stored its bytes (phase `await-join`), ended, or its
 * run is about to continue as new (the caller then asks again or reads the state). No command,
 * so runs that never receive it replay unchanged.
 */
export const waitUntilStoredUpdate = defineUpdate<GatewayUploadState>('waitUntilStored');
/**
 * tus: answers once the merge (the saga's pivot) completed — the object exists and only forward
 * steps remain (state `merged`) — or the upload ended, or its run is about to continue as new
 * before all its bytes arrived (the caller then waits for the end instead). What a finishing
 * request waits for. No command, so runs that never receive it replay unchanged; a worker of an
 * earlier version rejects it as unknown (no history either).
 */
export const waitUntilMergedUpdate = defineUpdate<GatewayUploadState>('waitUntilMerged');
/** tus concatenation: the final merged; the partial commits its reservation and deletes its object. */
export const partialJoinedSignal = defineSignal<[{ finalUploadId: string }]>('partialJoined');
/** tus concatenation: the final ended without an object; the partial waits for a claim again (until its expiry). */
export const releasePartialSignal = defineSignal<[{ finalUploadId: string }]>('releasePartial');

/** Updates one run handles before continuing as new. */
export const DEFAULT_UPDATES_PER_RUN = 500;
