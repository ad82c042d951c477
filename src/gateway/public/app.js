/**
 * The gateway's upload page (bundled with esbuild by src/gateway/page.ts, served as /app.js).
 *
 * Why it is built this way: Uppy's core with one uploader plugin per upload, and no UI plugin (the
 * Dashboard is large; a drop zone and two progress bars are enough). Two sources of progress are
 * shown side by side: what this browser sent (Uppy's `upload-progress`) and what the saga recorded
 * (the gateway's Server-Sent Events: phase, bytes, rate, and the final outcome with the object).
 * The stream is read with fetch, not EventSource, so the bearer token goes in a header and never
 * into a URL. For S3 multipart, @uppy/aws-s3 v6 sends no headers to its Companion endpoint, so the
 * page first asks for a short-lived upload session whose endpoint it gives to Uppy.
 *
 * Plain JavaScript on purpose: the repository type-checks TypeScript as CommonJS with Node 10
 * resolution, which cannot see Uppy's ESM-only types; esbuild bundles this file either way.
 */
import Uppy from '@uppy/core';
import AwsS3 from '@uppy/aws-s3';
import Tus from '@uppy/tus';

const MiB = 1024 * 1024;
const $ = (id) => document.getElementById(id);
/** Where the gateway is mounted: the page's own path as a directory (the gateway may sit under a prefix). */
const BASE = new URL(location.pathname.endsWith('/') ? location.pathname : `${location.pathname}/`, location.origin);

function formatBytes(bytes) {
  if (bytes === undefined || bytes === null) return '?';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < MiB) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

function setText(id, text) {
  $(id).textContent = text;
}

function setState(state) {
  document.body.dataset.state = state;
}

function showError(message) {
  setText('error', message);
  setState('failed');
}

// The token: typed in, or given as #token=… (a fragment never reaches the server).
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) {
  $('token').value = fromHash;
  history.replaceState(null, '', location.pathname + location.search);
}

const authHeaders = () => ({ Authorization: `Bearer ${$('token').value.trim()}` });
const protocol = () => document.querySelector('input[name=protocol]:checked').value;

/** Our upload id, once the uploader knows it: from the tus upload URL, or the S3 create answer. */
function uploadIdOf(file) {
  if (!file) return undefined;
  if (file.s3Multipart?.uploadId) return file.s3Multipart.uploadId;
  const url = file.tus?.uploadUrl;
  if (url) return new URL(url, location.href).pathname.split('/').filter(Boolean).pop();
  return undefined;
}

function resetView() {
  for (const id of ['sent', 'upload-id', 'phase', 'bytes', 'rate', 'outcome', 'result-bucket', 'result-key', 'result-etag', 'result-size'])
    setText(id, '—');
  setText('error', '');
  $('events').replaceChildren();
  $('sent-bar').value = 0;
  $('received-bar').value = 0;
}

/** Shows one progress event of the saga. */
function showEvent(event) {
  setText('phase', event.phase);
  setText('bytes', `${formatBytes(event.bytes)}${event.totalBytes !== undefined ? ` of ${formatBytes(event.totalBytes)}` : ''}`);
  setText('rate', `${formatBytes(event.rateBytesPerSecond)}/s`);
  setText('outcome', event.outcome);
  if (event.totalBytes) $('received-bar').value = event.bytes / event.totalBytes;
  const item = document.createElement('li');
  item.textContent = `${new Date(event.at).toISOString().slice(11, 23)} ${event.phase} ${formatBytes(event.bytes)} ${formatBytes(event.rateBytesPerSecond)}/s ${event.outcome}`;
  item.dataset.outcome = event.outcome;
  item.dataset.phase = event.phase;
  item.dataset.bytes = String(event.bytes);
  $('events').append(item);
  if (event.object) {
    setText('result-bucket', event.object.bucket);
    setText('result-key', event.object.key);
    setText('result-etag', event.object.etag);
    setText('result-size', `${event.object.size} bytes`);
  }
  if (event.outcome === 'completed') setState('done');
  else if (event.outcome !== 'running') showError(`The upload ended ${event.outcome}${event.error ? `: ${event.error}` : ''}`);
}

/** Reads the upload's event stream until its final event; reconnects if the connection drops before. */
async function watch(uploadId) {
  let outcome = 'running';
  for (let attempt = 1; outcome === 'running' && attempt <= 20; attempt++) {
    try {
      const response = await fetch(new URL(`uploads/${encodeURIComponent(uploadId)}/events`, BASE), {
        headers: { ...authHeaders(), Accept: 'text/event-stream' },
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
          showEvent(event);
        }
      }
    } catch (err) {
      if (attempt === 20) showError(String(err?.message ?? err));
    }
    if (outcome === 'running') await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function upload(file) {
  resetView();
  setState('uploading');
  const mode = protocol();
  const uppy = new Uppy({ id: `upload-${Date.now()}`, autoProceed: false });
  if (mode === 'tus') {
    uppy.use(Tus, {
      endpoint: new URL('files/', BASE).href,
      headers: authHeaders(),
      chunkSize: 5 * MiB,
      retryDelays: [0, 1000, 3000, 5000],
      removeFingerprintOnSuccess: true,
    });
  } else {
    const response = await fetch(new URL('uppy/sessions', BASE), { method: 'POST', headers: authHeaders() });
    if (!response.ok) throw new Error(`upload session: HTTP ${response.status} ${await response.text()}`);
    const session = await response.json();
    uppy.use(AwsS3, {
      companionEndpoint: new URL(session.companionEndpoint, location.href).href,
      // Every upload is a multipart saga; a file under 5 MiB is one part.
      shouldUseMultipart: true,
      getChunkSize: () => 5 * MiB,
    });
  }

  let watching;
  uppy.on('state-update', () => {
    const id = uploadIdOf(uppy.getFiles()[0]);
    if (id && !watching) {
      setText('upload-id', id);
      watching = watch(id);
    }
  });
  uppy.on('upload-progress', (_file, progress) => {
    setText('sent', `${formatBytes(progress.bytesUploaded)} of ${formatBytes(progress.bytesTotal)}`);
    if (progress.bytesTotal) $('sent-bar').value = progress.bytesUploaded / progress.bytesTotal;
  });
  uppy.on('upload-error', (_file, err) => showError(`Upload failed: ${err?.message ?? err}`));

  // S3 multipart: the declared length lets the gateway reserve space and check limits before any
  // byte moves (tus declares it with Upload-Length anyway).
  const meta = mode === 's3' ? { 'upload-length': String(file.size) } : {};
  uppy.addFile({ name: file.name, type: file.type || 'application/octet-stream', data: file, source: 'local', meta });
  await uppy.upload();
  await watching;
}

function start(file) {
  if (!file) return;
  if (!$('token').value.trim()) {
    showError('Enter the bearer token first.');
    return;
  }
  upload(file).catch((err) => showError(String(err?.message ?? err)));
}

const drop = $('drop');
drop.addEventListener('click', () => $('file').click());
drop.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' || event.key === ' ') $('file').click();
});
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  start(event.dataTransfer.files[0]);
});
$('file').addEventListener('change', (event) => {
  start(event.target.files[0]);
  event.target.value = '';
});
