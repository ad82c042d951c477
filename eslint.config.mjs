// Lint guards what the type checker cannot: the workflow sandbox (no Node built-ins or I/O
// libraries in deterministic code), floating promises, and type-only imports of activities.
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

const nodeBuiltins = [
  'fs',
  'path',
  'os',
  'crypto',
  'http',
  'https',
  'net',
  'child_process',
  'stream',
  'zlib',
  'url',
  'util',
  'worker_threads',
  'timers',
  'events',
  'dns',
  'tls',
];

export default tseslint.config(
  { ignores: ['.tmp/**', 'node_modules/**', 'dist/**', 'docs/api/**', 'coverage/**', 'test/artifacts/**', 'bin/**'] },
  ...tseslint.configs.recommended,
  prettier,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    // Deterministic workflow code: Temporal's sandbox would reject these at run time; catch them at lint time.
    files: [
      'src/patches.ts',
      'src/workflows/**/*.ts',
      'src/saga/workflow/**/*.ts',
      'src/saga/shared/**/*.ts',
      'src/telemetry/workflow/**/*.ts',
      'test/**/*-workflows.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.flatMap((name) => [
              { name, message: 'Workflow code must be deterministic: no Node built-ins.' },
              { name: `node:${name}`, message: 'Workflow code must be deterministic: no Node built-ins.' },
            ]),
            { name: '@temporalio/activity', message: 'Activities run on the worker, not in workflow code.' },
            { name: '@temporalio/client', message: 'Workflows cannot use the client.' },
            { name: '@temporalio/worker', message: 'Workflows cannot use the worker.' },
            { name: '@aws-sdk/client-s3', message: 'I/O belongs in activities.' },
          ],
          patterns: [
            {
              group: ['**/activities', '**/activities/*', '!**/activities/index'],
              message: 'Import activities as types only (import type).',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
);
