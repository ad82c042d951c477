#!/usr/bin/env node
/**
 * Launcher of the `upload-saga` CLI (package.json "bin"): the compiled CLI in dist/. The published
 * package ships it; in a clone, `npm run build` makes it (or run `npm run cli -- <command>`, tsx
 * from the sources, without a build).
 */
'use strict';
const path = require('node:path');
const main = path.join(__dirname, '../dist/cli/main.js');
let cli;
try {
  cli = require(main);
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes(main)) {
    console.error(`upload-saga: ${main} is missing: run \`npm run build\` first (or \`npm run cli -- <command>\` from the sources)`);
    process.exit(1);
  }
  throw err;
}
cli.run();
