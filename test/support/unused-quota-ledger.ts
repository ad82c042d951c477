/**
 * A quota ledger for tests that call activities which never reach the quota (S3 steps only): any
 * call fails, so a test that does reach it says so instead of passing on a made-up answer.
 */
import type { QuotaLedger } from '../../src/quota/ledger';

export const unusedQuotaLedger: QuotaLedger = {
  reserve: () => Promise.reject(new Error('not used')),
  release: () => Promise.reject(new Error('not used')),
  shrink: () => Promise.reject(new Error('not used')),
  commit: () => Promise.reject(new Error('not used')),
  usage: () => Promise.reject(new Error('not used')),
};
