/**
 * The tus route's request checks as pure functions: the method override and what each header
 * may be. The same answers are compared with tusd's over HTTP in test/gateway/tus-conformance.test.ts;
 * here the edges (sizes, zeros, signs, empty values) are covered without servers.
 */
import { describe, expect, it } from 'vitest';
import { checkTusRequest, effectiveMethod, TUS_VERSION } from '../../src/gateway/tus-request-checks';

const MAX = 1000;
const tus = { 'tus-resumable': TUS_VERSION };
const patch = (headers: Record<string, string>) =>
  checkTusRequest('PATCH', { ...tus, 'content-type': 'application/offset+octet-stream', ...headers }, MAX);
const post = (headers: Record<string, string>) => checkTusRequest('POST', { ...tus, ...headers }, MAX);

describe('effectiveMethod', () => {
  it(`takes X-HTTP-Method-Override as the method, whatever the request's own (the spec: "The actual method of the request MUST be ignored")`, () => {
    expect(effectiveMethod('POST', { 'x-http-method-override': 'PATCH' })).toBe('PATCH');
    expect(effectiveMethod('POST', { 'x-http-method-override': 'DELETE' })).toBe('DELETE');
    expect(effectiveMethod('POST', { 'x-http-method-override': 'HEAD' })).toBe('HEAD');
    expect(effectiveMethod('POST', {})).toBe('POST');
    expect(effectiveMethod('POST', { 'x-http-method-override': '' })).toBe('POST');
    expect(effectiveMethod('PATCH', { 'x-http-method-override': 'DELETE' })).toBe('DELETE');
    expect(effectiveMethod('PATCH', {})).toBe('PATCH');
  });

  it('refuses another name with 405, naming the allowed ones (method names are case-sensitive)', () => {
    for (const name of ['PUT', 'GET', 'patch']) {
      const refusal = effectiveMethod('POST', { 'x-http-method-override': name });
      expect(refusal).toMatchObject({ status: 405, headers: { Allow: 'POST, PATCH, HEAD, DELETE, OPTIONS' } });
      expect(typeof refusal === 'object' && refusal.body).toContain(JSON.stringify(name));
    }
  });
});

describe('checkTusRequest', () => {
  it('lets OPTIONS through without Tus-Resumable, and refuses every other method without it or with another version (412 + Tus-Version)', () => {
    expect(checkTusRequest('OPTIONS', {}, MAX)).toBeUndefined();
    for (const method of ['POST', 'HEAD', 'PATCH', 'DELETE']) {
      expect(checkTusRequest(method, {}, MAX)).toMatchObject({ status: 412, headers: { 'Tus-Version': '1.0.0' } });
      expect(checkTusRequest(method, { 'tus-resumable': '0.2.2' }, MAX)?.body).toContain('"0.2.2" is not supported');
    }
  });

  it('refuses a PATCH of another content type with 415 before looking at its offset', () => {
    expect(checkTusRequest('PATCH', { ...tus, 'content-type': 'text/plain' }, MAX)?.status).toBe(415);
    expect(checkTusRequest('PATCH', tus, MAX)?.status).toBe(415);
  });

  it('needs a PATCH to carry Upload-Offset as a non-negative integer', () => {
    expect(patch({ 'upload-offset': '0' })).toBeUndefined();
    expect(patch({ 'upload-offset': '123' })).toBeUndefined();
    expect(patch({})?.body).toContain('a PATCH needs Upload-Offset');
    for (const bad of ['', '-1', '+1', '01', '1.5', '1e3', 'abc', ' 1', '99999999999999999999']) {
      expect(patch({ 'upload-offset': bad }), bad).toMatchObject({ status: 400 });
    }
  });

  it('needs a POST to carry Upload-Length as a non-negative integer within the maximum size', () => {
    expect(post({ 'upload-length': '0' })).toBeUndefined();
    expect(post({ 'upload-length': String(MAX) })).toBeUndefined();
    expect(post({})?.body).toBe(
      "a POST needs Upload-Length: the upload's size in bytes (or Upload-Defer-Length: 1 when it is not known yet)",
    );
    expect(post({ 'upload-length': String(MAX + 1) })).toMatchObject({ status: 413 });
    for (const bad of ['-5', 'ten', '1.0', '']) expect(post({ 'upload-length': bad }), bad).toMatchObject({ status: 400 });
  });

  it('accepts Upload-Defer-Length: 1 instead of Upload-Length, and refuses another value or both headers', () => {
    expect(post({ 'upload-defer-length': '1' })).toBeUndefined();
    for (const bad of ['0', '2', 'true', '', ' 1']) {
      expect(post({ 'upload-defer-length': bad }), bad).toMatchObject({
        status: 400,
        body: expect.stringContaining('Upload-Defer-Length must be 1'),
      });
    }
    expect(post({ 'upload-defer-length': '1', 'upload-length': '5' })).toMatchObject({
      status: 400,
      body: expect.stringContaining('not both'),
    });
  });

  it('checks Upload-Concat: a partial needs its length like any creation, a final has none, anything else is a bad request', () => {
    expect(post({ 'upload-length': '5', 'upload-concat': 'partial' })).toBeUndefined();
    expect(post({ 'upload-defer-length': '1', 'upload-concat': 'partial' })).toBeUndefined();
    expect(post({ 'upload-concat': 'partial' })).toMatchObject({
      status: 400,
      body: expect.stringContaining('a POST needs Upload-Length'),
    });
    expect(post({ 'upload-concat': 'final;/files/a /files/b' })).toBeUndefined();
    for (const length of [{ 'upload-length': '5' }, { 'upload-defer-length': '1' }] as Record<string, string>[])
      expect(post({ ...length, 'upload-concat': 'final;/files/a' })).toMatchObject({
        status: 400,
        body: expect.stringContaining('a final upload (Upload-Concat: final) takes no Upload-Length'),
      });
    for (const bad of ['nonsense', 'final;', 'final', 'Partial'])
      expect(post({ 'upload-length': '5', 'upload-concat': bad }), bad).toMatchObject({
        status: 400,
        body: expect.stringContaining('Upload-Concat must be "partial" or "final;"'),
      });
  });

  it('checks the Upload-Length a PATCH declares: a non-negative integer within the maximum size', () => {
    expect(patch({ 'upload-offset': '0', 'upload-length': String(MAX) })).toBeUndefined();
    expect(patch({ 'upload-offset': '0', 'upload-length': String(MAX + 1) })).toMatchObject({ status: 413 });
    for (const bad of ['-5', 'ten', '1.0', ''])
      expect(patch({ 'upload-offset': '0', 'upload-length': bad }), bad).toMatchObject({ status: 400 });
  });

  it('refuses malformed Upload-Metadata: a value not Base64, a key twice, an empty key, a key with a space', () => {
    expect(post({ 'upload-length': '1', 'upload-metadata': 'filename YS5iaW4=,is_confidential' })).toBeUndefined();
    for (const bad of ['filename !!', 'a YQ==,a Yg==', ',a YQ==', 'a YQ== extra']) {
      expect(post({ 'upload-length': '1', 'upload-metadata': bad }), bad).toMatchObject({ status: 400 });
    }
  });
});
