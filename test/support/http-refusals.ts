/**
 * What the tests of the gateway's HTTP protocols (tus, the resumable-upload draft) check alike:
 * that a bad-input table of HTTP answers ("request | case | status | answer") is what the named
 * case's step answered, and that refused requests left nothing in S3.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import { codeSpans, fragmentPattern, readRepoFile, section, tables } from './markdown';
import { keysUnder, multipartKeysUnder } from './s3-inspect';

/** A step's answer as the catalogue checks it. */
export interface CataloguedAnswer {
  status: string | null;
  body: string;
}

/**
 * Checks every row of the `title` section of docs/reference/bad-input.md: its case column is
 * "<case name>, step <n>"; that step's answer has the row's status and contains each code span of
 * the row's answer column (`…` stands for text that varies).
 */
export function expectCatalogueRows(title: string, answersOf: (caseName: string) => readonly CataloguedAnswer[] | undefined): void {
  const rows = tables(section(readRepoFile('docs/reference/bad-input.md'), title)).flatMap((t) => t.rows);
  expect(rows.length).toBeGreaterThan(0);
  for (const [request, caseAndStep, status, answer] of rows) {
    const match = /^(.+), step (\d+)$/.exec(caseAndStep!.replace(/`/g, ''));
    expect(match, `row "${request}": the case column is "<case name>, step <n>"`).not.toBeNull();
    const answers = answersOf(match![1]!);
    expect(answers, `row "${request}": case "${match![1]}" ran`).toBeDefined();
    const got = answers![Number(match![2]) - 1]!;
    expect(got.status, `row "${request}"`).toBe(status);
    for (const fragment of codeSpans(answer!)) expect(got.body, `row "${request}"`).toMatch(fragmentPattern(fragment));
  }
}

/**
 * Every object and multipart upload under `<tenant>/` and every staged segment of the tenant
 * belongs to an upload in `created` (by the id in its key), `except` keys aside; and there is
 * something to look at.
 */
export async function expectOnlyCreatedUploadsInS3(
  s3: S3Client,
  bucket: string,
  tenant: string,
  created: ReadonlySet<string>,
  except: readonly string[] = [],
): Promise<void> {
  expect(created.size).toBeGreaterThan(0);
  const keys = [...(await multipartKeysUnder(s3, bucket, `${tenant}/`)), ...(await keysUnder(s3, bucket, `${tenant}/`))].filter(
    (key) => !except.includes(key),
  );
  const staged = await keysUnder(s3, bucket, `.upload-saga/staging/${tenant}/`);
  expect(keys.length + staged.length, 'the accepted uploads left something to look at').toBeGreaterThan(0);
  for (const key of keys) expect(created, key).toContain(key.split('/')[1]);
  for (const key of staged) expect(created, key).toContain(key.split('/')[3]);
}
