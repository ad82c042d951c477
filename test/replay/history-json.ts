/**
 * Workflow histories as JSON files: Temporal's proto-JSON form, the one `historyToJSON` and
 * `temporal workflow show --output json` write.
 *
 * Why not `historyToJSON` / `historyFromJSON` from `@temporalio/common` directly: with this
 * install's node_modules layout (protobufjs 7 at the top for `@grpc/proto-loader`, and a separate
 * protobufjs 8 nested under each `@temporalio` package) both throw "type must be a Type": common's
 * proto-JSON extension checks `instanceof Type` against its own protobufjs copy, while the history
 * type comes from `@temporalio/proto`'s copy. This module does what those two functions do, with
 * the extension of the copy the history type belongs to, so it works with a nested or a
 * deduplicated layout alike. Once the SDK functions work here, they can replace it.
 */
import { createRequire } from 'node:module';
import type { History } from '@temporalio/common/lib/proto-utils';

export type { History };

interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): unknown;
}
interface HistoryCodec {
  fromObject(history: History): unknown;
}

// The very @temporalio/proto that @temporalio/common uses, and protobufjs as that module resolves it.
const requireFromCommon = createRequire(require.resolve('@temporalio/common'));
const protoPath = requireFromCommon.resolve('@temporalio/proto');
const requireFromProto = createRequire(protoPath);
const proto = requireFromProto(protoPath) as { temporal: { api: { history: { v1: { History: HistoryCodec } } } } };
const { patchProtobufRoot } = requireFromProto('@temporalio/proto/lib/patch-protobuf-root') as {
  patchProtobufRoot<T>(root: T): T & { lookupType(name: string): unknown };
};
const protojson = requireFromProto('protobufjs/ext/protojson') as ProtoJson;
const historyType = patchProtobufRoot(proto).lookupType('temporal.api.history.v1.History');

/** The history as pretty-printed proto JSON (what `historyToJSON` returns). */
export function historyToJson(history: History): string {
  return JSON.stringify(protojson.toJson(historyType, proto.temporal.api.history.v1.History.fromObject(history)), null, 2);
}

/**
 * A history from parsed proto JSON, ready for `Worker.runReplayHistory` (what `historyFromJSON`
 * returns). Fields a newer server or SDK added are ignored.
 */
export function historyFromJson(json: unknown): History {
  if (typeof json !== 'object' || json === null || !Array.isArray((json as { events?: unknown }).events)) {
    throw new TypeError('not a workflow history: expected an object with an array of events');
  }
  const loaded = protojson.fromJson(historyType, json, { ignoreUnknownFields: true }) as History | null;
  if (loaded === null) throw new TypeError('not a workflow history');
  return loaded;
}
