/**
 * A Companion-style client for the gateway's S3 multipart endpoints, speaking to one endpoint the
 * way @uppy/aws-s3 v6's S3Companion does (same paths, JSON in, JSON out), plus the binding
 * parameters (`size`, `checksum`) and the part report (`done`) that Uppy itself does not send.
 */
import { expect } from 'vitest';
import { MiB } from '../support/files';
import type { TestGateway, TestTenant } from './gateway-harness';

/** A Companion-style client speaking to one endpoint, as Uppy's S3Companion does (JSON in, JSON out). */
export class CompanionClient {
  constructor(
    readonly endpoint: string,
    private readonly headers: Record<string, string> = {},
  ) {}

  async request(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const response = await fetch(`${this.endpoint}/s3${path}`, {
      method,
      headers: { ...this.headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) : undefined };
  }

  async create(filename: string, metadata: Record<string, unknown> = {}): Promise<{ uploadId: string; key: string }> {
    const { status, json } = await this.request('POST', '/multipart', { filename, type: 'application/x-test', metadata });
    expect(status, JSON.stringify(json)).toBe(200);
    return json as { uploadId: string; key: string };
  }

  async sign(uploadId: string, key: string, partNumber: number): Promise<string> {
    return (await this.signed(uploadId, key, partNumber)).url;
  }

  /** A part URL and the headers its PUT must carry, binding `size` and `checksum` when given. */
  async signed(
    uploadId: string,
    key: string,
    partNumber: number | string,
    bind: { size?: string; checksum?: string } = {},
  ): Promise<{ url: string; headers: Record<string, string> }> {
    const { status, json } = await this.signRequest(uploadId, key, partNumber, bind);
    expect(status, JSON.stringify(json)).toBe(200);
    return json as { url: string; headers: Record<string, string> };
  }

  signRequest(uploadId: string, key: string, partNumber: number | string, bind: { size?: string; checksum?: string } = {}) {
    return this.request('GET', `/multipart/${encodeURIComponent(uploadId)}/${partNumber}?${new URLSearchParams({ key, ...bind })}`);
  }

  /** Reports a finished part (`POST …/:partNumber/done`). */
  done(uploadId: string, key: string, partNumber: number, claim: unknown) {
    return this.request('POST', `/multipart/${encodeURIComponent(uploadId)}/${partNumber}/done?${new URLSearchParams({ key })}`, claim);
  }

  /** Signs and PUTs one part straight to S3; returns its ETag as Uppy keeps it (quotes stripped). */
  async putPart(uploadId: string, key: string, partNumber: number, data: Buffer): Promise<string> {
    const url = await this.sign(uploadId, key, partNumber);
    const response = await fetch(url, { method: 'PUT', body: data });
    expect(response.status, await response.clone().text()).toBe(200);
    return response.headers.get('etag')!.replace(/^"+|"+$/g, '');
  }

  list(uploadId: string, key: string) {
    return this.request('GET', `/multipart/${encodeURIComponent(uploadId)}?${new URLSearchParams({ key })}`);
  }

  complete(uploadId: string, key: string, parts: { PartNumber: number; ETag: string }[]) {
    return this.request('POST', `/multipart/${encodeURIComponent(uploadId)}/complete?${new URLSearchParams({ key })}`, { parts });
  }

  abort(uploadId: string, key: string) {
    return this.request('DELETE', `/multipart/${encodeURIComponent(uploadId)}?${new URLSearchParams({ key })}`);
  }
}

/** An upload session and a client on its endpoint, as the page does for Uppy v6. */
export async function sessionClient(target: TestGateway, tenant: TestTenant): Promise<CompanionClient> {
  const response = await fetch(`${target.url}/uppy/sessions`, { method: 'POST', headers: tenant.auth });
  expect(response.status).toBe(201);
  const session = (await response.json()) as { companionEndpoint: string; expiresAt: string };
  expect(session.companionEndpoint).toMatch(/^\/uppy\/session\/[A-Za-z0-9_-]{43}$/);
  expect(Date.parse(session.expiresAt)).toBeGreaterThan(Date.now() + 50 * 60_000);
  return new CompanionClient(new URL(session.companionEndpoint, target.url).href);
}

/** Sends `data` in parts of `partSize`; returns the list Uppy would complete with. */
export async function sendParts(client: CompanionClient, uploadId: string, key: string, data: Buffer, partSize = 5 * MiB) {
  const parts: { PartNumber: number; ETag: string }[] = [];
  for (let offset = 0, n = 1; offset < data.length; offset += partSize, n++) {
    parts.push({ PartNumber: n, ETag: await client.putPart(uploadId, key, n, data.subarray(offset, offset + partSize)) });
  }
  return parts;
}

/** PUTs `data` to a part URL with `headers`, as a browser would: the status, S3's error code and message, the ETag (quotes stripped). */
export async function putToS3(
  url: string,
  data: Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; code: string; text: string; etag: string }> {
  const response = await fetch(url, { method: 'PUT', body: data, headers });
  const text = await response.text();
  return {
    status: response.status,
    code: /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? '',
    text,
    etag: response.ok ? response.headers.get('etag')!.replace(/^"+|"+$/g, '') : '',
  };
}
