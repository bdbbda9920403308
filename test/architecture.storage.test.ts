import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT } from './helpers/cli.js';

// Storage behind stores (docs/architecture.md, docs/storage.md): SQL is written only under
// src/storage/ — domain code calls named store operations, and the adapters turn driver errors
// into domain errors, so nothing outside src/storage knows a driver's error codes either.

const SRC = join(REPO_ROOT, 'src');

/** SQL statements and driver error codes, as they appear in string literals. */
export const SQL_PATTERNS: readonly RegExp[] = [
  /\bSELECT\b[\s\S]{0,400}?\bFROM\b/,
  /\bINSERT\s+INTO\b/,
  /\bUPDATE\s+[a-z_]+\s+SET\b/,
  /\bDELETE\s+FROM\b/,
  /\b(CREATE|DROP)\s+(TABLE|INDEX|UNIQUE\s+INDEX)\b/,
  /\bALTER\s+TABLE\b/,
  /\bPRAGMA\s+[a-z_]+/,
  /\bBEGIN\s+(IMMEDIATE|EXCLUSIVE|TRANSACTION)\b/,
  /\bON\s+CONFLICT\b/,
  /\bpg_advisory/,
  /['"`]SQLITE_[A-Z_]+['"`]/,
  /['"`](23505|40001|40P01|53100|57P01)['"`]/,
];

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The places in `text` that look like SQL or a driver error code (line numbers, 1-based). */
export function sqlFindings(text: string): { line: number; match: string }[] {
  const out: { line: number; match: string }[] = [];
  for (const re of SQL_PATTERNS) {
    const g = new RegExp(re.source, `${re.flags}g`);
    for (const m of text.matchAll(g)) {
      const line = text.slice(0, m.index).split('\n').length;
      out.push({ line, match: m[0].slice(0, 60).replace(/\s+/g, ' ') });
    }
  }
  return out;
}

describe('storage behind stores', () => {
  test('the patterns find SQL and driver codes, and not PEM armour or prose', () => {
    assert.equal(sqlFindings("q.all('SELECT id, name FROM principals WHERE id = $1')").length, 1);
    assert.equal(sqlFindings('`DELETE FROM refresh_tokens WHERE family = $1`').length, 1);
    assert.equal(sqlFindings("e.code === 'SQLITE_CONSTRAINT_UNIQUE'").length, 1);
    assert.equal(sqlFindings("code === '23505'").length, 1);
    assert.equal(sqlFindings('-----BEGIN CERTIFICATE-----').length, 0);
    assert.equal(sqlFindings("const BEGIN = '# BEGIN latchkey vaults';").length, 0);
    assert.equal(sqlFindings('// select the newest version from the list').length, 0);
  });

  test('no file under src/ outside src/storage/ contains SQL or a driver error code', () => {
    const offenders = tsFiles(SRC)
      .filter((f) => !relative(SRC, f).startsWith(`storage${sep}`))
      .flatMap((f) =>
        sqlFindings(readFileSync(f, 'utf8')).map(
          (x) => `${relative(SRC, f).split(sep).join('/')}:${x.line}: ${x.match}`,
        ),
      );
    assert.deepEqual(offenders, [], 'move these into a store under src/storage/<domain>/');
  });
});
