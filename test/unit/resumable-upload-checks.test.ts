/**
 * The resumable-upload draft's request checks as pure functions, and the 104 written on a real
 * loopback connection. The same answers are compared with tusd's over HTTP in
 * test/gateway/resumable-upload.test.ts; here the edges (versions, Booleans, lengths) are covered
 * without the stack.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { writeInformational } from '../../src/gateway/informational-response';
import { completenessField, readDraftRequest } from '../../src/gateway/resumable-upload-checks';

const MAX = 1000;
const v6 = { 'upload-draft-interop-version': '6' };
const post = (headers: Record<string, string>) => readDraftRequest('POST', { ...v6, ...headers }, MAX);
const patch = (headers: Record<string, string>) =>
  readDraftRequest('PATCH', { ...v6, 'content-type': 'application/partial-upload', 'upload-offset': '0', ...headers }, MAX);

describe('readDraftRequest', () => {
  it('leaves tus requests, OPTIONS, and an unknown version beside Tus-Resumable to tus', () => {
    expect(readDraftRequest('POST', { 'tus-resumable': '1.0.0', 'upload-length': '3' }, MAX)).toBeUndefined();
    expect(readDraftRequest('OPTIONS', v6, MAX)).toBeUndefined();
    expect(readDraftRequest('POST', { 'upload-draft-interop-version': '7', 'tus-resumable': '1.0.0' }, MAX)).toBeUndefined();
  });

  it('refuses a version not served with 412, and a method the draft has not with 405', () => {
    expect(readDraftRequest('POST', { 'upload-draft-interop-version': '7' }, MAX)).toMatchObject({ status: 412 });
    expect(readDraftRequest('POST', { 'upload-draft-interop-version': '06' }, MAX)).toMatchObject({ status: 412 });
    expect(readDraftRequest('PUT', v6, MAX)).toMatchObject({ status: 405, headers: { Allow: 'POST, HEAD, PATCH, DELETE, OPTIONS' } });
  });

  it('reads Upload-Complete as a structured-field Boolean, and interop 3’s Upload-Incomplete the other way round', () => {
    expect(post({ 'upload-complete': '?1', 'content-length': '5' })).toMatchObject({ complete: true, length: 5 });
    expect(post({ 'upload-complete': '?0', 'upload-length': '9' })).toMatchObject({ complete: false, length: 9 });
    for (const bad of ['?2', 'true', '1', '?1;x', ''])
      expect(post({ 'upload-complete': bad, 'upload-length': '9' }), bad).toMatchObject({ status: 400 });
    const v3 = { 'upload-draft-interop-version': '3' };
    expect(readDraftRequest('POST', { ...v3, 'upload-incomplete': '?0', 'content-length': '4' }, MAX)).toMatchObject({
      complete: true,
      length: 4,
    });
    expect(readDraftRequest('POST', { ...v3, 'upload-complete': '?1', 'content-length': '4' }, MAX)).toMatchObject({ status: 400 });
    expect(completenessField('3', true)).toEqual(['Upload-Incomplete', '?0']);
    expect(completenessField('6', true)).toEqual(['Upload-Complete', '?1']);
    expect(completenessField('4', false)).toEqual(['Upload-Complete', '?0']);
  });

  it('takes a creation of unknown length; a final size within the maximum, consistent with a complete content', () => {
    const unknown = post({ 'upload-complete': '?0' });
    expect(unknown).toMatchObject({ method: 'POST', complete: false });
    expect(unknown).not.toHaveProperty('length');
    const chunked = post({ 'upload-complete': '?1' }); // its end will be its size
    expect(chunked).toMatchObject({ method: 'POST', complete: true });
    expect(chunked).not.toHaveProperty('length');
    expect(post({ 'upload-complete': '?0', 'content-length': String(MAX + 1) })).toMatchObject({ status: 413 });
    expect(post({ 'upload-complete': '?1', 'content-length': '4' })).toMatchObject({ length: 4 });
    expect(post({ 'upload-complete': '?0', 'upload-length': String(MAX + 1) })).toMatchObject({ status: 413 });
    expect(post({ 'upload-complete': '?0', 'upload-length': String(MAX) })).toMatchObject({ length: MAX });
    expect(post({ 'upload-complete': '?1', 'upload-length': '5', 'content-length': '4' })).toMatchObject({ status: 400 });
    expect(post({ 'upload-complete': '?0', 'upload-length': '5', 'content-length': '6' })).toMatchObject({ status: 400 });
    expect(post({ 'upload-complete': '?0', 'upload-length': '5', 'upload-offset': '0' })).toMatchObject({ status: 400 });
    for (const bad of ['-1', '1.5', '01', 'ten', '1234567890123456'])
      expect(post({ 'upload-complete': '?0', 'upload-length': bad }), bad).toMatchObject({ status: 400 });
  });

  it('checks an append: Upload-Offset required and an integer, partial-upload media type from version 6 on', () => {
    expect(patch({ 'upload-offset': '7' })).toMatchObject({ method: 'PATCH', offset: 7, complete: false });
    expect(patch({ 'upload-offset': '7', 'upload-complete': '?1', 'content-length': '3' })).toMatchObject({
      complete: true,
      contentLength: 3,
    });
    expect(readDraftRequest('PATCH', { ...v6, 'content-type': 'application/partial-upload' }, MAX)).toMatchObject({ status: 400 });
    expect(patch({ 'upload-offset': 'x' })).toMatchObject({ status: 400 });
    expect(patch({ 'content-type': 'application/offset+octet-stream' })).toMatchObject({ status: 415 });
    expect(readDraftRequest('PATCH', { 'upload-draft-interop-version': '5', 'upload-offset': '0' }, MAX)).toMatchObject({ offset: 0 });
  });

  it('refuses offset retrieval and cancellation that carry the fields they must not', () => {
    expect(readDraftRequest('HEAD', v6, MAX)).toEqual({ version: '6', method: 'HEAD', complete: false });
    for (const field of ['upload-offset', 'upload-complete', 'upload-length'])
      expect(readDraftRequest('HEAD', { ...v6, [field]: field === 'upload-complete' ? '?0' : '0' }, MAX), field).toMatchObject({
        status: 400,
      });
    expect(readDraftRequest('DELETE', { ...v6, 'upload-length': '3' }, MAX)).toMatchObject({ method: 'DELETE' });
    expect(readDraftRequest('DELETE', { ...v6, 'upload-complete': '?1' }, MAX)).toMatchObject({ status: 400 });
  });
});

describe('writeInformational', () => {
  async function exchange(handler: http.RequestListener) {
    const server = http.createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      return await new Promise<{ informational: { status: number; headers: http.IncomingHttpHeaders }[]; status: number }>(
        (resolve, reject) => {
          const informational: { status: number; headers: http.IncomingHttpHeaders }[] = [];
          const request = http.request({ port, host: '127.0.0.1', method: 'POST', agent: false });
          request.on('information', (info) => informational.push({ status: info.statusCode, headers: info.headers }));
          request.on('response', (response) => {
            response.resume();
            response.on('end', () => resolve({ informational, status: response.statusCode! }));
          });
          request.on('error', reject);
          request.end();
        },
      );
    } finally {
      server.close();
    }
  }

  it('sends a 104 with its fields before the final response', async () => {
    const got = await exchange((req, res) => {
      expect(
        writeInformational(res, 104, 'Upload Resumption Supported', { Location: '/files/abc', 'Upload-Draft-Interop-Version': '6' }),
      ).toBe(true);
      res.writeHead(201).end();
    });
    expect(got).toEqual({
      status: 201,
      informational: [{ status: 104, headers: { location: '/files/abc', 'upload-draft-interop-version': '6' } }],
    });
  });

  it('sends nothing once the final head is out, or when a field could split the head', async () => {
    const got = await exchange((req, res) => {
      expect(writeInformational(res, 104, 'Upload Resumption Supported', { Location: '/files/a\r\nX-Injected: 1' })).toBe(false);
      res.writeHead(201);
      res.flushHeaders();
      expect(writeInformational(res, 104, 'Upload Resumption Supported', { Location: '/files/abc' })).toBe(false);
      res.end();
    });
    expect(got).toEqual({ status: 201, informational: [] });
    expect(() => writeInformational({} as http.ServerResponse, 200, 'OK', {})).toThrow(RangeError);
  });
});
