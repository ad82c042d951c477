/**
 * `@tus/server` with `@tus/s3-store`, as its README sets them up, for the bench's gateway section:
 * run as its own process (`node --import tsx bench/tus-node-server.ts`) so that its memory is its
 * own. Reads the S3 endpoint, region, bucket and credentials from S3_* variables and
 * TUS_NODE_BUCKET; prints `url http://127.0.0.1:<port>` once it listens; stops on SIGTERM.
 *
 * Why the store's defaults: the row compares what a user of tus-node-server gets out of the box
 * (8 MiB parts, up to 60 part uploads at once, parts buffered on disk), as the tusd row does.
 */
import http from 'node:http';
import { S3Store } from '@tus/s3-store';
import { Server } from '@tus/server';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set`);
  return value;
}

const store = new S3Store({
  s3ClientConfig: {
    bucket: required('TUS_NODE_BUCKET'),
    endpoint: required('S3_ENDPOINT'),
    region: required('S3_REGION'),
    forcePathStyle: true,
    credentials: { accessKeyId: required('S3_ACCESS_KEY_ID'), secretAccessKey: required('S3_SECRET_ACCESS_KEY') },
  },
});
const tus = new Server({ path: '/files', datastore: store });
const server = http.createServer((req, res) => void tus.handle(req, res));
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address && typeof address === 'object') process.stdout.write(`url http://127.0.0.1:${address.port}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
