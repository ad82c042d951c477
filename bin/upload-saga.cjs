#!/usr/bin/env node
/**
 * Launcher of the `upload-saga` CLI (package.json "bin"), so `npx upload-saga …` works from a
 * clone without a build step: tsx's CommonJS hook compiles the TypeScript sources on the fly
 * (tsx is a runtime dependency for this reason), then src/cli/main.ts does the rest.
 */
'use strict';
require('tsx/cjs');
require('../src/cli/main.ts').run();
