/**
 * Sends an HTTP/1.1 informational (1xx) response ahead of the final one: Node's http server has
 * `writeContinue` (100), `writeProcessing` (102) and `writeEarlyHints` (103), but no way to send
 * another 1xx such as the resumable-upload draft's `104 Upload Resumption Supported`.
 *
 * Why it is built this way: an informational response is a status line and header fields written
 * on the connection before the final response's head (RFC 9110 §15.2), which is what Node's own
 * `writeEarlyHints` does. It is written on the socket only while that is sound:
 * - the final response's head is not sent yet (`headersSent` is false), so nothing of this
 *   response is on the wire;
 * - the response owns the connection (`res.socket` is set: Node attaches a pipelined request's
 *   response to the socket only once the responses before it are written);
 * - the request is HTTP/1.1 or later over HTTP/1 (RFC 9110: a server MUST NOT send a 1xx to an
 *   HTTP/1.0 client; HTTP/2 streams are not written this way).
 * Otherwise nothing is sent: an informational response is optional, and the final answer carries
 * the same fields.
 */
import type { ServerResponse } from 'node:http';

/** Field values that could split the head (CR, LF, NUL) are never written. */
const UNSAFE = /[\r\n\0]/;

/**
 * Writes `HTTP/1.1 <status> <reason>` with `headers` on `res`'s connection, if it is sound (see the
 * module comment).
 * @returns whether it was written
 * @example
 * writeInformational(reply.raw, 104, 'Upload Resumption Supported', { Location: '/files/abc' });
 */
export function writeInformational(res: ServerResponse, status: number, reason: string, headers: Record<string, string>): boolean {
  if (status < 100 || status > 199 || status === 101) throw new RangeError(`${status} is not an informational status`);
  const socket = res.socket;
  const { httpVersionMajor, httpVersionMinor } = res.req;
  if (res.headersSent || !socket || socket.destroyed || httpVersionMajor !== 1 || httpVersionMinor < 1) return false;
  const fields = Object.entries(headers);
  if (UNSAFE.test(reason) || fields.some(([name, value]) => UNSAFE.test(name) || UNSAFE.test(value))) return false;
  const head = `HTTP/1.1 ${status} ${reason}\r\n${fields.map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`;
  socket.write(head, 'latin1');
  return true;
}
