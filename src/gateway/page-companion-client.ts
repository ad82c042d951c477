/**
 * The esbuild plugin that gives the upload page's @uppy/aws-s3 the page's own Companion client
 * (src/gateway/public/checksummed-companion-client.js): @uppy/aws-s3's `import … from
 * './s3-client/CompanionS3.js'` resolves to the subclass, and the subclass's `import … from
 * 'upload-saga:uppy-companion-s3'` to the original.
 *
 * Why it is built this way: @uppy/aws-s3 v6 takes no client and has no hook for how a part is
 * signed and sent; substituting one module at bundle time keeps the rest of Uppy's uploader as it
 * is (see the subclass's header). The seam is an internal file of @uppy/aws-s3, so the build fails,
 * saying so, if the substitution did not happen — a renamed module cannot silently drop checksums.
 */
import path from 'node:path';
import type { Plugin } from 'esbuild';

const SUBCLASS = path.join(__dirname, 'public', 'checksummed-companion-client.js');
const ORIGINAL_SPECIFIER = 'upload-saga:uppy-companion-s3';

/** An esbuild plugin substituting the page's Companion client for @uppy/aws-s3's. */
export function companionClientSubstitution(): Plugin {
  return {
    name: 'upload-saga-companion-client',
    setup(build) {
      const awsS3Lib = path.dirname(require.resolve('@uppy/aws-s3'));
      const original = path.join(awsS3Lib, 's3-client', 'CompanionS3.js');
      let substituted = false;
      build.onStart(() => {
        substituted = false;
      });
      build.onResolve({ filter: /^\.\/s3-client\/CompanionS3\.js$/ }, (args) => {
        if (path.resolve(args.resolveDir, args.path) !== original) return undefined;
        substituted = true;
        return { path: SUBCLASS };
      });
      build.onResolve({ filter: /^upload-saga:uppy-companion-s3$/ }, () => ({ path: original }));
      build.onEnd((result) => {
        if (result.errors.length === 0 && !substituted)
          throw new Error(
            `@uppy/aws-s3 no longer imports ./s3-client/CompanionS3.js from ${awsS3Lib}: the page's checksummed Companion client cannot be put in (${ORIGINAL_SPECIFIER}); update src/gateway/page-companion-client.ts`,
          );
      });
    },
  };
}
