/**
 * UPLOAD_SAGA_S3_SOURCE_PROFILES: parsed into profiles, every problem listed, and no problem ever
 * quotes the value (it holds secret keys).
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { parseS3SourceProfiles } from '../../src/s3-source-profiles';

const SECRET = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY';

describe('S3 source profiles', () => {
  it('parses profiles with the documented defaults', () => {
    const { profiles, problems } = parseS3SourceProfiles(
      JSON.stringify({
        archive: { endpoint: 'http://127.0.0.1:9100', accessKeyId: 'ak', secretAccessKey: SECRET },
        aws: { region: 'eu-west-1' },
      }),
    );
    expect(problems).toEqual([]);
    expect({ ...profiles }).toEqual({
      archive: {
        endpoint: 'http://127.0.0.1:9100',
        region: 'us-east-1',
        credentials: { accessKeyId: 'ak', secretAccessKey: SECRET },
        forcePathStyle: true,
      },
      aws: { region: 'eu-west-1', forcePathStyle: false },
    });
  });

  it('is empty when unset', () => {
    expect(parseS3SourceProfiles(undefined)).toMatchObject({ problems: [] });
    expect(loadConfig({}).s3SourceProfiles).toEqual({});
  });

  it.each([
    ['broken JSON', `{"archive":{"secretAccessKey":"${SECRET}"`, 'is not valid JSON'],
    ['an array', `["${SECRET}"]`, 'must be a JSON object of profiles by name'],
    [
      'a key without its secret',
      JSON.stringify({ a: { accessKeyId: SECRET } }),
      'profile "a": accessKeyId and secretAccessKey must be set together',
    ],
    ['a bad endpoint', JSON.stringify({ a: { endpoint: SECRET } }), 'profile "a".endpoint: must be a URL'],
    ['an unknown field', JSON.stringify({ a: { password: SECRET } }), 'profile "a": unknown field(s) password'],
    ['a bad profile name', JSON.stringify({ 'a b': {} }), 'profile name "a b" may contain only letters'],
  ])('reports %s without quoting the value', (_name, text, message) => {
    const { problems } = parseS3SourceProfiles(text);
    expect(problems.join('\n')).toContain(message);
    expect(problems.join('\n')).not.toContain(SECRET);
    // And the worker refuses to start, listing it.
    expect(() => loadConfig({ UPLOAD_SAGA_S3_SOURCE_PROFILES: text })).toThrow(message);
  });
});
