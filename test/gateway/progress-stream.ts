/**
 * A minimal reader of the progress stream (`GET /uploads/:id/events`, Server-Sent Events) for tests:
 * it collects every event as it arrives.
 */
import type { ProgressEvent } from '../../src/gateway/progress';
import type { TestGateway } from './gateway-harness';

export interface Stream {
  status: number;
  contentType: string | null;
  events: ProgressEvent[];
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

/** Opens `GET /uploads/:id/events` and collects its events (a minimal SSE reader). */
export async function openStream(gateway: TestGateway, uploadId: string, auth: Record<string, string>): Promise<Stream> {
  const controller = new AbortController();
  const response = await fetch(`${gateway.url}/uploads/${uploadId}/events`, {
    headers: { ...auth, Accept: 'text/event-stream' },
    signal: controller.signal,
  });
  const events: ProgressEvent[] = [];
  const read = async () => {
    if (!response.ok || !response.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trim())
          .join('\n');
        if (data) events.push(JSON.parse(data) as ProgressEvent);
      }
    }
  };
  const ended = read().catch((err: unknown) => {
    if (!controller.signal.aborted) throw err;
  });
  return { status: response.status, contentType: response.headers.get('content-type'), events, ended, close: () => controller.abort() };
}
