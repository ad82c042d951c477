/**
 * The README states behaviour and names; these tests keep it honest as the code changes.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../src/config';
import { UPLOAD_DEFAULTS } from '../src/upload/request';
import { UPLOAD_SEARCH_ATTRIBUTE_TYPES } from '../src/upload/search-attributes';
import { uploadSteps } from '../src/workflows/upload-steps';
import packageJson from '../package.json';

const readme = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');

describe('README', () => {
  it('documents every configuration variable the code reads', () => {
    for (const variable of CONFIG_VARIABLES) expect(readme, variable.name).toContain(`\`${variable.name}\``);
  });

  it('names every step of the upload saga and every search attribute', () => {
    for (const step of Object.keys(uploadSteps)) expect(readme, step).toContain(step);
    for (const [name, type] of Object.entries(UPLOAD_SEARCH_ATTRIBUTE_TYPES)) expect(readme).toContain(`${name}:${type}`);
  });

  it('shows the two commands, and they exist', () => {
    expect(readme).toContain('npm install && npm run demo');
    expect(readme).toContain('npm test');
    expect(packageJson.scripts).toHaveProperty('demo');
    expect(packageJson.scripts).toHaveProperty('test');
  });

  it('states the request defaults the code uses', () => {
    expect(readme).toContain(`\`partSize\` ${UPLOAD_DEFAULTS.partSize / 1024 / 1024} MiB`);
    expect(readme).toContain(`\`partConcurrency\` ${UPLOAD_DEFAULTS.partConcurrency}`);
    expect(readme).toContain(`\`checksumAlgorithm\` \`${UPLOAD_DEFAULTS.checksumAlgorithm}\``);
    expect(readme).toContain(`\`partsPerActivity\` ${UPLOAD_DEFAULTS.partsPerActivity}`);
    expect(readme).toContain(`\`verify\` \`${UPLOAD_DEFAULTS.verify}\``);
  });
});
