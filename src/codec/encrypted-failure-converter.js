/**
 * The failure converter of an encrypting deployment: Temporal's default converter with
 * `encodeCommonAttributes`, which moves every failure's message and stack trace into a payload
 * (`encodedAttributes`) that the payload codec then encrypts. Without it, the text of an error
 * (paths, object keys, …) would reach history in plain text even when every payload is encrypted.
 *
 * Why a CommonJS `.js` file: Temporal loads a failure converter by path, twice — the workflow
 * bundler (webpack) puts it into the sandbox, and the worker `require()`s it natively for activity
 * failures. A `.ts` module would load under tsx but not where no TypeScript hook is installed
 * (vitest's worker processes, compiled deployments); plain CommonJS loads everywhere, and it only
 * needs `@temporalio/common`, which is allowed in workflow code.
 */
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports */
const { DefaultFailureConverter } = require('@temporalio/common');

/** Named `failureConverter`, as `DataConverter.failureConverterPath` requires. */
exports.failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
