#!/usr/bin/env node
/**
 * Launcher of the `upload-saga` CLI (package.json "bin"): the compiled CLI in dist/ (`npm run build`
 * makes it; the published package ships it). From a clone without a build, run
 * `npm run cli -- <command>` (tsx from the sources) instead.
 */
'use strict';
require('../dist/cli/main.js').run();
