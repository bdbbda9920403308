import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ERROR_STATUS, LatchkeyError } from '../src/errors/index.js';

const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

/** Every table row of docs/errors.md as code → status. */
function documentedCodes(): Map<string, number[]> {
  const rows = new Map<string, number[]>();
  for (const line of doc.split('\n')) {
    const m = /^\|\s*`([A-Za-z_]+)`\s*\|\s*(\d{3})\s*\|/.exec(line);
    if (m) rows.set(m[1]!, [...(rows.get(m[1]!) ?? []), Number(m[2])]);
  }
  return rows;
}

describe('error codes', () => {
  test('docs/errors.md lists every code in ERROR_STATUS with its status', () => {
    const documented = documentedCodes();
    const missing: string[] = [];
    const wrongStatus: string[] = [];
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      const statuses = documented.get(code);
      if (!statuses) missing.push(code);
      else if (!statuses.includes(status)) wrongStatus.push(`${code}: documented ${statuses}, is ${status}`);
    }
    assert.deepEqual(missing, [], `codes missing from docs/errors.md: ${missing.join(', ')}`);
    assert.deepEqual(wrongStatus, [], `codes documented with the wrong status: ${wrongStatus.join('; ')}`);
  });

  test('docs/errors.md documents no code that does not exist', () => {
    const unknown = [...documentedCodes().keys()].filter((c) => !(c in ERROR_STATUS));
    assert.deepEqual(unknown, [], `docs/errors.md lists unknown codes: ${unknown.join(', ')}`);
  });

  test('every status is an HTTP error status', () => {
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      assert.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code} → ${status}`);
    }
  });

  test('LatchkeyError carries its code, default status and an optional override', () => {
    const e = new LatchkeyError('SecretNotFound', 'no such secret');
    assert.equal(e.code, 'SecretNotFound');
    assert.equal(e.status, 404);
    assert.equal(e.message, 'no such secret');
    assert.deepEqual(e.headers, {});
    const o = new LatchkeyError('invalid_client', 'bad', { status: 400, aadCodes: [7000215] });
    assert.equal(o.status, 400);
    assert.deepEqual(o.aadCodes, [7000215]);
  });
});
