/**
 * The root logger (src/logging.ts): level filtering, redaction, the Temporal SDK adapter's upload
 * fields, the trace id hook and the human-readable format.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, prettyStream, setTraceIdProvider, TemporalLogger, uploadFieldsOf, type LoggingConfig } from '../../src/logging';

function memory(config: LoggingConfig, isTTY = false) {
  const text: string[] = [];
  const destination = { isTTY, write: (line: string) => void text.push(line) };
  return {
    logger: createLogger(config, { destination, name: 'test' }),
    text,
    lines: () => text.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

afterEach(() => setTraceIdProvider(undefined));

describe('createLogger', () => {
  it('writes JSON lines at and above its level only', () => {
    const { logger, lines } = memory({ level: 'warn', format: 'json' });
    logger.info('hidden');
    logger.debug('hidden');
    logger.warn('shown');
    logger.error({ err: new Error('boom') }, 'failed');
    expect(lines().map((l) => l.msg)).toEqual(['shown', 'failed']);
    expect(lines()[1]).toMatchObject({ level: 50, name: 'test', err: { type: 'Error', message: 'boom' } });
    expect(typeof lines()[0]!.time).toBe('string');
  });

  it('redacts authorization headers, credentials, keys, tokens and secrets', () => {
    const { logger, text } = memory({ level: 'info', format: 'json' });
    logger.info(
      {
        headers: { authorization: 'Bearer t0ken-a' },
        s3: { credentials: { accessKeyId: 'AKIA-b', secretAccessKey: 'sk-c' } },
        webhook: { secret: 'whsec-d' },
        temporal: { apiKey: 'key-e' },
        req: { method: 'GET', url: '/uploads/x/events?access_token=t0ken-f', headers: { authorization: 'Bearer t0ken-g' } },
      },
      'with secrets',
    );
    const line = text.join('');
    for (const secret of ['t0ken-a', 'AKIA-b', 'sk-c', 'whsec-d', 'key-e', 't0ken-f', 't0ken-g']) expect(line).not.toContain(secret);
    expect(line).toContain('[REDACTED]');
    expect(line).toContain('/uploads/x/events?access_token=[REDACTED]');
  });

  it('adds traceId from the provider when it returns one', () => {
    const { logger, lines } = memory({ level: 'info', format: 'json' });
    logger.info('before');
    setTraceIdProvider(() => 'trace-1');
    logger.info('after');
    expect(lines()[0]).not.toHaveProperty('traceId');
    expect(lines()[1]).toMatchObject({ traceId: 'trace-1' });
  });

  it('is human-readable on a TTY unless LOG_FORMAT says json', () => {
    const tty = memory({ level: 'info' }, true);
    tty.logger.info({ uploadId: 'u1' }, 'hello');
    expect(tty.text.join('')).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  \[test\] hello {2}uploadId=u1\n$/);
    const piped = memory({ level: 'info' }, false);
    piped.logger.info('hello');
    expect(JSON.parse(piped.text.join(''))).toMatchObject({ msg: 'hello' });
    const forced = memory({ level: 'info', format: 'json' }, true);
    forced.logger.info('hello');
    expect(JSON.parse(forced.text.join(''))).toMatchObject({ msg: 'hello' });
  });

  it('prettyStream passes through lines that are not JSON', () => {
    const out: string[] = [];
    prettyStream({ write: (l: string) => void out.push(l) }).write('plain\n');
    expect(out).toEqual(['plain\n']);
  });
});

describe('TemporalLogger', () => {
  it("maps the SDK's levels and attributes, adding tenant and uploadId from the workflow id", () => {
    const { logger, lines } = memory({ level: 'info', format: 'json' });
    const sdk = new TemporalLogger(logger);
    sdk.debug('hidden', { workflowId: 'upload:acme:u-1' });
    sdk.info('Activity completed', { workflowId: 'upload:acme:u-1', activityType: 'completeUpload', sdkComponent: 'activity' });
    sdk.log('ERROR', 'failed', { error: new Error('kaput'), workflowId: 'quota-ledger:acme' });
    expect(lines()).toHaveLength(2);
    expect(lines()[0]).toMatchObject({
      level: 30,
      msg: 'Activity completed',
      tenant: 'acme',
      uploadId: 'u-1',
      workflowId: 'upload:acme:u-1',
      activityType: 'completeUpload',
    });
    expect(lines()[1]).toMatchObject({ level: 50, err: { message: 'kaput' }, workflowId: 'quota-ledger:acme' });
    expect(lines()[1]).not.toHaveProperty('uploadId');
  });

  it('uploadFieldsOf reads upload:<tenant>:<uploadId> only', () => {
    expect(uploadFieldsOf('upload:t:a:b')).toEqual({ tenant: 't', uploadId: 'a:b' });
    expect(uploadFieldsOf('other')).toEqual({});
    expect(uploadFieldsOf(undefined)).toEqual({});
  });
});
