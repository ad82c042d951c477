/**
 * The saga beside Uppy's Dashboard: one panel per upload with what this browser sent and what the
 * saga recorded — phase, bytes, rate, outcome, the stored object and the event list.
 *
 * Why it is built this way: the Dashboard shows the transfer (bytes leaving this browser), which
 * ends before the saga does (verify, merge, notify); the outcome only the gateway knows. Each
 * upload's events are read from `GET uploads/:id/events` with fetch, not EventSource, so the bearer
 * token goes in a header and never into a URL; a dropped stream is read again until its final event.
 * Panels carry `data-*` attributes (state, phase, outcome, bytes) so a test reads what a person sees.
 */

const MiB = 1024 * 1024;

export function formatBytes(bytes) {
  if (bytes === undefined || bytes === null) return '?';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < MiB) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

const FIELDS = [
  ['sent', 'Sent by this browser'],
  ['upload-id', 'Upload id'],
  ['phase', 'Phase'],
  ['bytes', 'Received'],
  ['rate', 'Rate'],
  ['outcome', 'Outcome'],
  ['result-bucket', 'Bucket'],
  ['result-key', 'Key'],
  ['result-etag', 'ETag'],
  ['result-size', 'Size'],
];

function element(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** One upload's panel. */
class SagaPanel {
  constructor(container, file) {
    this.root = element('section', { class: 'saga', 'data-file-id': file.id, 'data-state': 'uploading' });
    this.root.append(element('h3', {}, file.name));
    const list = element('dl');
    this.fields = {};
    for (const [name, label] of FIELDS) {
      const value = element('dd', { 'data-field': name }, '—');
      this.fields[name] = value;
      list.append(element('dt', {}, label), value);
    }
    this.bar = element('progress', { max: '1', value: '0', 'aria-label': 'recorded by the saga' });
    this.error = element('div', { class: 'error', role: 'status' });
    this.events = element('ol', { class: 'events' });
    this.root.append(list, this.bar, this.error, this.events);
    container.append(this.root);
  }

  set(name, text) {
    this.fields[name].textContent = text;
  }

  get state() {
    return this.root.dataset.state;
  }

  set state(value) {
    this.root.dataset.state = value;
  }

  fail(message) {
    this.error.textContent = message;
    this.state = 'failed';
  }

  showEvent(event) {
    this.set('phase', event.phase);
    this.set('bytes', `${formatBytes(event.bytes)}${event.totalBytes !== undefined ? ` of ${formatBytes(event.totalBytes)}` : ''}`);
    this.set('rate', `${formatBytes(event.rateBytesPerSecond)}/s`);
    this.set('outcome', event.outcome);
    if (event.totalBytes) this.bar.value = event.bytes / event.totalBytes;
    const item = element(
      'li',
      { 'data-outcome': event.outcome, 'data-phase': event.phase, 'data-bytes': String(event.bytes) },
      `${new Date(event.at).toISOString().slice(11, 23)} ${event.phase} ${formatBytes(event.bytes)} ${formatBytes(event.rateBytesPerSecond)}/s ${event.outcome}`,
    );
    this.events.append(item);
    if (event.object) {
      this.set('result-bucket', event.object.bucket);
      this.set('result-key', event.object.key);
      this.set('result-etag', event.object.etag);
      this.set('result-size', `${event.object.size} bytes`);
    }
    if (event.outcome === 'completed') this.state = 'done';
    else if (event.outcome !== 'running') this.fail(`The upload ended ${event.outcome}${event.error ? `: ${event.error}` : ''}`);
  }
}

/**
 * The panels of every upload on the page; `document.body.dataset.state` sums them up: `uploading`
 * while any runs, `failed` once one failed, `done` when all completed.
 */
export class SagaView {
  /**
   * @param {HTMLElement} container where the panels go
   * @param {{ base: URL, authHeaders: () => Record<string, string> }} gateway
   */
  constructor(container, gateway) {
    this.container = container;
    this.gateway = gateway;
    /** @type {Map<string, SagaPanel & { uploadId?: string }>} by Uppy file id */
    this.panels = new Map();
  }

  panelOf(file) {
    let panel = this.panels.get(file.id);
    if (!panel) {
      panel = new SagaPanel(this.container, file);
      this.panels.set(file.id, panel);
      this.summarize();
    }
    return panel;
  }

  /** The upload's id is known: show it and follow its saga (once per upload id). */
  follow(file, uploadId) {
    const panel = this.panelOf(file);
    if (panel.uploadId === uploadId) return;
    panel.uploadId = uploadId;
    panel.root.dataset.uploadId = uploadId;
    panel.set('upload-id', uploadId);
    this.watch(panel, uploadId).finally(() => this.summarize());
  }

  sent(file, progress) {
    const panel = this.panelOf(file);
    panel.set('sent', `${formatBytes(progress.bytesUploaded)} of ${formatBytes(progress.bytesTotal)}`);
  }

  failed(file, message) {
    this.panelOf(file).fail(message);
    this.summarize();
  }

  removed(file) {
    const panel = this.panels.get(file.id);
    if (!panel) return;
    panel.root.remove();
    this.panels.delete(file.id);
    this.summarize();
  }

  summarize() {
    const states = [...this.panels.values()].map((panel) => panel.state);
    document.body.dataset.state =
      states.length === 0
        ? 'idle'
        : states.includes('failed')
          ? 'failed'
          : states.every((state) => state === 'done')
            ? 'done'
            : 'uploading';
  }

  /** Reads the upload's event stream until its final event; reconnects if the connection drops before. */
  async watch(panel, uploadId) {
    let outcome = 'running';
    for (let attempt = 1; outcome === 'running' && attempt <= 20 && panel.uploadId === uploadId; attempt++) {
      try {
        const response = await fetch(new URL(`uploads/${encodeURIComponent(uploadId)}/events`, this.gateway.base), {
          headers: { ...this.gateway.authHeaders(), Accept: 'text/event-stream' },
        });
        if (!response.ok) throw new Error(`progress stream: HTTP ${response.status} ${await response.text()}`);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block
              .split('\n')
              .filter((line) => line.startsWith('data:'))
              .map((line) => line.slice(5).trimStart())
              .join('\n');
            if (!data) continue; // a keep-alive comment
            const event = JSON.parse(data);
            outcome = event.outcome;
            panel.showEvent(event);
            this.summarize();
          }
        }
      } catch (err) {
        if (attempt === 20) panel.fail(String(err?.message ?? err));
      }
      if (outcome === 'running') await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}
