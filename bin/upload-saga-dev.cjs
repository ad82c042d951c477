#!/usr/bin/env node
/**
 * The `upload-saga` CLI from the TypeScript sources, without a build: tsx's CommonJS hook compiles
 * them on the fly (tsx is a devDependency). For development and the tests that spawn the CLI;
 * not published (package.json "files" lists bin/upload-saga.cjs only).
 */
'use strict';
require('tsx/cjs');
require('../src/cli/main.ts').run();
