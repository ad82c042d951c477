/**
 * `upload-saga stack --temporal postgres --postgres <url>`: what the URL names, and the usage
 * error (exit code 2) for what it cannot be.
 */
import { describe, expect, it } from 'vitest';
import { postgresConnection } from '../../src/cli/commands/stack';
import { UsageError } from '../../src/cli/errors';

describe('stack --postgres <url>', () => {
  it('reads host, port, user and password, with the defaults of a local PostgreSQL', () => {
    expect(postgresConnection('postgres://postgres@127.0.0.1:5432', {})).toEqual({ host: '127.0.0.1', port: 5432, user: 'postgres' });
    expect(postgresConnection('postgresql://db.internal', {})).toEqual({ host: 'db.internal', port: 5432, user: 'postgres' });
    expect(postgresConnection('postgres://temporal:s%40cret@[::1]:6543', {})).toEqual({
      host: '::1',
      port: 6543,
      user: 'temporal',
      password: 's@cret',
    });
  });

  it('takes the password from PGPASSWORD when the URL has none', () => {
    expect(postgresConnection('postgres://temporal@db:5432', { PGPASSWORD: 'from-env' })).toMatchObject({ password: 'from-env' });
    expect(postgresConnection('postgres://temporal:in-url@db:5432', { PGPASSWORD: 'from-env' })).toMatchObject({ password: 'in-url' });
  });

  it('refuses what is not a postgres:// URL with a host', () => {
    for (const bad of ['127.0.0.1:5432', 'mysql://root@db:3306', 'postgres://', '']) {
      expect(() => postgresConnection(bad, {}), bad).toThrow(UsageError);
    }
  });
});
