/**
 * The gateway's upload page (bundled with esbuild by src/gateway/page.ts, served as /app.js and
 * /app.css): Uppy's Dashboard for choosing and sending files, the saga's live phase and outcome
 * beside it (saga-view.js).
 *
 * Why it is built this way:
 * - Uppy does the uploading and its UI: the Dashboard (drop, several files, pause/resume, retry,
 *   remove), @uppy/tus through the gateway or @uppy/aws-s3 with presigned parts straight to S3, and
 *   @uppy/golden-retriever, which keeps the chosen files and each upload's state (`file.s3Multipart`,
 *   `file.tus.uploadUrl`) in IndexedDB: after a reload or a closed tab the Dashboard shows the
 *   session restored, and Resume continues each upload from what the server already has (ListParts
 *   for S3 multipart, the tus offset). Files over golden-retriever's IndexedDB limit (10 MiB) come
 *   back as "ghosts" the person chooses again; the upload still resumes where it stopped.
 * - One Uppy instance with a fixed id (golden-retriever keys its store by it) and one uploader at a
 *   time; the protocol is remembered in localStorage so a restored upload gets its own uploader
 *   back. The bearer token is never stored: it is typed in or given as `/#token=…` again.
 * - @uppy/aws-s3 v6 sends no headers to a Companion endpoint, so the page first asks for a
 *   short-lived upload session whose endpoint (token in the path) it gives to Uppy. Every presigned
 *   upload is multipart, cut by Uppy's default part-size rule, which the gateway applies too, so
 *   each part URL binds the part's exact size; the declared length (`upload-length`) lets the
 *   gateway reserve space before any byte moves. After each part the page reports it
 *   (part-reports.js), so the saga's progress is pushed, not polled.
 * - Per-part checksums: the page hashes each part (SHA-256, WebCrypto) and asks for its URL with
 *   the part's size and checksum; the PUT carries the `x-amz-checksum-sha256` header the signature
 *   binds, so S3 refuses a part that is not the one hashed. @uppy/aws-s3 v6 has no hook for this, so
 *   the bundle puts a subclass of its Companion client in (checksummed-companion-client.js, one
 *   method) instead of a hand-written uploader: pause, retry and resume stay Uppy's.
 *
 * Plain JavaScript on purpose: the repository type-checks TypeScript as CommonJS with Node 10
 * resolution, which cannot see Uppy's ESM-only types; esbuild bundles this file either way.
 */
import Uppy from '@uppy/core';
import Dashboard from '@uppy/dashboard';
import GoldenRetriever from '@uppy/golden-retriever';
import AwsS3 from '@uppy/aws-s3';
import Tus from '@uppy/tus';
import '@uppy/core/css/style.min.css';
import '@uppy/dashboard/css/style.min.css';
import { reportFinishedParts } from './part-reports.js';
import { SagaView } from './saga-view.js';

const MiB = 1024 * 1024;
const PROTOCOL_KEY = 'upload-saga:protocol';
const $ = (id) => document.getElementById(id);
/** Where the gateway is mounted: the page's own path as a directory (the gateway may sit under a prefix). */
const BASE = new URL(location.pathname.endsWith('/') ? location.pathname : `${location.pathname}/`, location.origin);

function showError(message) {
  $('error').textContent = message;
  document.body.dataset.state = 'failed';
}

// The token: typed in, or given as #token=… (a fragment never reaches the server).
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) {
  $('token').value = fromHash;
  history.replaceState(null, '', location.pathname + location.search);
}
const token = () => $('token').value.trim();
const authHeaders = () => ({ Authorization: `Bearer ${token()}` });

const saved = localStorage.getItem(PROTOCOL_KEY);
if (saved === 'tus' || saved === 's3') document.querySelector(`input[name=protocol][value=${saved}]`).checked = true;
const protocol = () => document.querySelector('input[name=protocol]:checked').value;

const sagas = new SagaView($('sagas'), { base: BASE, authHeaders });

const uppy = new Uppy({
  id: 'upload-saga-page',
  autoProceed: false,
  onBeforeUpload: (files) => {
    if (!document.body.dataset.uploader) {
      uppy.info(token() ? 'Connecting to the gateway, try again in a moment.' : 'Enter the bearer token first.', 'error', 5000);
      return false;
    }
    return files;
  },
});
uppy.use(Dashboard, {
  target: '#uppy',
  inline: true,
  width: '100%',
  height: 420,
  proudlyDisplayPoweredByUppy: false,
  note: 'Several files at once; pause, resume, retry or remove each one.',
});
uppy.use(GoldenRetriever);

/** The Companion endpoint @uppy/aws-s3 uses now (the S3 protocol only). */
let companionEndpoint;
reportFinishedParts(uppy, () => companionEndpoint);

/** Our upload id, once the uploader knows it: from the tus upload URL, or the S3 create answer. */
function uploadIdOf(file) {
  if (file.s3Multipart?.uploadId) return file.s3Multipart.uploadId;
  const url = file.tus?.uploadUrl;
  if (url) return new URL(url, location.href).pathname.split('/').filter(Boolean).pop();
  return undefined;
}

/** Follows each upload's saga as soon as its id is known (also for uploads golden-retriever restored). */
function followUploads() {
  if (!token()) return;
  for (const file of uppy.getFiles()) {
    const id = uploadIdOf(file);
    if (id) sagas.follow(file, id);
  }
}

uppy.on('state-update', followUploads);
uppy.on('file-added', (file) => {
  // The declared length lets the gateway reserve space and bind each part's size before any byte moves.
  uppy.setFileMeta(file.id, { 'upload-length': String(file.size) });
});
uppy.on('upload-progress', (file, progress) => sagas.sent(file, progress));
// An empty file goes as one form POST to the gateway's `…/s3/empty/<uploadId>` (no multipart state):
// its id is in the location Uppy reports.
uppy.on('upload-success', (file, response) => {
  const emptyFileId = /\/s3\/empty\/([^/]+)\//.exec(response?.uploadURL ?? '')?.[1];
  if (file && emptyFileId && token()) sagas.follow(file, decodeURIComponent(emptyFileId));
});
uppy.on('upload-error', (file, err) => file && sagas.failed(file, `Upload failed: ${err?.message ?? err}`));
uppy.on('file-removed', (file) => sagas.removed(file));

/** Installs the uploader of the chosen protocol (S3 needs an upload session first). */
let configuring = Promise.resolve();
function configureUploader() {
  configuring = configuring.then(async () => {
    delete document.body.dataset.uploader;
    for (const id of ['Tus', 'AwsS3']) {
      const plugin = uppy.getPlugin(id);
      if (plugin) uppy.removePlugin(plugin);
    }
    companionEndpoint = undefined;
    const mode = protocol();
    localStorage.setItem(PROTOCOL_KEY, mode);
    if (!token()) return;
    if (mode === 'tus') {
      uppy.use(Tus, {
        endpoint: new URL('files/', BASE).href,
        headers: authHeaders(),
        chunkSize: 5 * MiB,
        retryDelays: [0, 1000, 3000, 5000],
        removeFingerprintOnSuccess: true,
        // Upload-Length says the size already.
        allowedMetaFields: ['name', 'type'],
      });
    } else {
      const response = await fetch(new URL('uppy/sessions', BASE), { method: 'POST', headers: authHeaders() });
      if (!response.ok) throw new Error(`upload session: HTTP ${response.status} ${await response.text()}`);
      const session = await response.json();
      companionEndpoint = new URL(session.companionEndpoint, location.href).href;
      // Every upload is a multipart saga (a file under 5 MiB is one part), cut by Uppy's default
      // part-size rule, the one the gateway binds part sizes by.
      uppy.use(AwsS3, { companionEndpoint, shouldUseMultipart: true });
    }
    document.body.dataset.uploader = mode;
    followUploads();
  });
  configuring.catch((err) => showError(String(err?.message ?? err)));
  configuring = configuring.catch(() => undefined);
}

$('token').addEventListener('change', configureUploader);
for (const input of document.querySelectorAll('input[name=protocol]')) input.addEventListener('change', configureUploader);
configureUploader();
