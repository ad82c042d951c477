/**
 * An HTTP relay between a worker and MinIO that can hold back one kind of S3 request — every
 * ListParts, or every CompleteMultipartUpload — until the scenario lets it through. That is how a
 * scenario parks an upload in a given phase (verify waits on ListParts, merge on
 * CompleteMultipartUpload) long enough to act there: cancel it, kill a worker. It can also lose
 * the answers of the next few requests of one kind: the request reaches MinIO and is carried
 * out, and the client's connection is cut instead of the answer being returned.
 *
 * Why it is built this way:
 * - Real requests to the real MinIO: the relay forwards each request byte for byte, with its
 *   original `Host` header, so SigV4 signatures stay valid; it only decides *when*. Nothing is
 *   answered on MinIO's behalf.
 * - It works on the HTTP level (not TCP, like test/support/tcp-counter.ts) because keep-alive
 *   connections carry many requests, and only a parsed request line says which S3 operation one is.
 * - A held request whose client gives up (socket closed, e.g. a SIGKILLed worker) is dropped on
 *   release, never replayed: a dead worker's request must not reach S3 afterwards.
 * - An upstream failure (MinIO down) destroys the client's socket, as a broken network would.
 * - A lost answer is read from MinIO to its end before the client's socket is destroyed, so the
 *   request was carried out in full; only successful (2xx) answers are lost, so each lost answer
 *   is an operation that took effect and the client never heard of.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** The S3 operations the relay tells apart (path-style requests, as the saga sends them). */
export type S3Operation =
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'UploadPartCopy'
  | 'ListParts'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'ListMultipartUploads'
  | 'ListObjects'
  | 'DeleteObjects'
  | 'HeadBucket'
  | 'HeadObject'
  | 'GetObject'
  | 'PutObject'
  | 'DeleteObject'
  | 'Other';

/** Which S3 operation a path-style request is, from its method, path and query string. */
export function s3OperationOf(method: string, url: string, headers: http.IncomingHttpHeaders = {}): S3Operation {
  const parsed = new URL(url, 'http://relay');
  const q = parsed.searchParams;
  const segments = parsed.pathname.split('/').filter(Boolean);
  const onObject = segments.length >= 2;
  switch (method) {
    case 'POST':
      if (q.has('uploads')) return 'CreateMultipartUpload';
      if (q.has('uploadId')) return 'CompleteMultipartUpload';
      if (q.has('delete')) return 'DeleteObjects';
      return 'Other';
    case 'PUT':
      if (q.has('partNumber') && q.has('uploadId')) return headers['x-amz-copy-source'] ? 'UploadPartCopy' : 'UploadPart';
      return onObject ? 'PutObject' : 'Other';
    case 'GET':
      if (onObject) return q.has('uploadId') ? 'ListParts' : 'GetObject';
      if (q.has('uploads')) return 'ListMultipartUploads';
      return 'ListObjects';
    case 'HEAD':
      return onObject ? 'HeadObject' : 'HeadBucket';
    case 'DELETE':
      if (q.has('uploadId')) return 'AbortMultipartUpload';
      return onObject ? 'DeleteObject' : 'Other';
    default:
      return 'Other';
  }
}

/** Requests of one operation, held back until {@link GateHold.release}. */
export interface GateHold {
  readonly operation: S3Operation;
  /** Requests waiting right now. */
  readonly waiting: number;
  /** Resolves once at least `count` requests have been held (in total, released or not). */
  waitUntilHeld(count?: number, timeoutMs?: number): Promise<void>;
  /** Lets every waiting request through, and stops holding this operation. */
  release(): void;
}

/** One request the relay saw. */
export interface GateRequest {
  readonly operation: S3Operation;
  readonly method: string;
  readonly path: string;
  /** When it arrived. */
  readonly at: number;
  /** Its body's length (`Content-Length`; 0 without one): the bytes it carried. */
  readonly bytes: number;
  /** MinIO's answer status, once it answered (unset while held, or if it never got through). */
  status?: number;
  /** When MinIO's answer reached the relay. */
  answeredAt?: number;
}

/** Options of {@link S3Gate.hold}. */
export interface HoldOptions {
  /**
   * Let this many more requests of the operation through first, then hold the rest: parks a batch
   * after a known number of its files.
   * @default 0
   */
  readonly afterPassing?: number;
}

/** Answers of one operation that the relay loses, from {@link S3Gate.loseAnswers}. */
export interface GateLoss {
  readonly operation: S3Operation;
  /** Requests of the operation forwarded to MinIO since the loss was set up (lost or not). */
  readonly forwarded: number;
  /** The bodies of the answers lost so far, in order (e.g. the XML naming a created UploadId). */
  readonly lost: readonly string[];
}

/** The relay. */
export interface S3Gate {
  /** `http://127.0.0.1:<port>`: give it to the worker as `S3_ENDPOINT`. */
  readonly url: string;
  /** Every request seen, in order of arrival. */
  readonly seen: readonly GateRequest[];
  /** From now on (after `afterPassing` more), requests of `operation` wait until the returned hold is released. */
  hold(operation: S3Operation, options?: HoldOptions): GateHold;
  /**
   * From now on, the next `count` successful answers to `operation` are lost: the request is
   * carried out by MinIO, then the client's connection is destroyed instead of answered.
   */
  loseAnswers(operation: S3Operation, count: number): GateLoss;
  /** Releases every hold and closes the relay. */
  close(): Promise<void>;
}

/** Starts an {@link S3Gate} in front of `target` (MinIO's S3 endpoint URL). */
export async function startS3Gate(target: string): Promise<S3Gate> {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const holds = new Map<S3Operation, { queue: (() => void)[]; total: number; waiters: (() => void)[]; pass: number }>();
  const seen: GateRequest[] = [];
  const sockets = new Set<Socket>();
  const losses = new Map<S3Operation, { toLose: number; forwarded: number; lost: string[] }>();

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, operation: S3Operation, record: GateRequest) => {
    if (req.socket.destroyed) return; // the client gave up while held: never replay its request
    const loss = losses.get(operation);
    if (loss) loss.forwarded++;
    const outgoing = http.request(
      { host: upstream.hostname, port: Number(upstream.port), method: req.method, path: req.url, headers: req.headers, agent },
      (answer) => {
        const status = answer.statusCode ?? 502;
        record.status = status;
        record.answeredAt = Date.now();
        if (loss && loss.toLose > 0 && status >= 200 && status < 300) {
          loss.toLose--;
          const chunks: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => chunks.push(chunk));
          answer.on('end', () => {
            loss.lost.push(Buffer.concat(chunks).toString('utf8'));
            req.socket.destroy();
          });
          answer.on('error', () => req.socket.destroy());
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders);
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    outgoing.on('error', () => res.destroy());
    req.pipe(outgoing);
    req.resume();
  };

  const server = http.createServer((req, res) => {
    const operation = s3OperationOf(req.method ?? 'GET', req.url ?? '/', req.headers);
    const record: GateRequest = {
      operation,
      method: req.method ?? '',
      path: req.url ?? '',
      at: Date.now(),
      bytes: Number(req.headers['content-length'] ?? 0) || 0,
    };
    seen.push(record);
    const hold = holds.get(operation);
    if (hold && hold.pass > 0) hold.pass--;
    else if (hold) {
      req.pause();
      hold.total++;
      hold.queue.push(() => forward(req, res, operation, record));
      for (const wake of hold.waiters.splice(0)) wake();
      return;
    }
    forward(req, res, operation, record);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const releaseAll = () => {
    for (const [operation, hold] of holds) {
      holds.delete(operation);
      for (const go of hold.queue.splice(0)) go();
    }
  };

  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    hold(operation, options = {}) {
      const state = holds.get(operation) ?? { queue: [], total: 0, waiters: [], pass: 0 };
      state.pass = options.afterPassing ?? 0;
      holds.set(operation, state);
      return {
        operation,
        get waiting() {
          return state.queue.length;
        },
        async waitUntilHeld(count = 1, timeoutMs = 120_000) {
          const deadline = Date.now() + timeoutMs;
          while (state.total < count) {
            const left = deadline - Date.now();
            if (left <= 0)
              throw new Error(`no ${operation} request reached the S3 gate within ${timeoutMs / 1000} s (${state.total} of ${count})`);
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, Math.min(left, 1_000));
              state.waiters.push(() => {
                clearTimeout(timer);
                resolve();
              });
            });
          }
        },
        release() {
          if (holds.get(operation) === state) holds.delete(operation);
          for (const go of state.queue.splice(0)) go();
        },
      };
    },
    loseAnswers(operation, count) {
      const state = { toLose: count, forwarded: 0, lost: [] as string[] };
      losses.set(operation, state);
      return {
        operation,
        get forwarded() {
          return state.forwarded;
        },
        get lost() {
          return state.lost;
        },
      };
    },
    async close() {
      releaseAll();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      agent.destroy();
    },
  };
}
