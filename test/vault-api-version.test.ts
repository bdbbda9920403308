import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { LATEST_VAULT_API_VERSION, vaultApiVersion } from '../src/http/vault-api-version.js';

/**
 * The api-versions the installed `@azure/keyvault-*` packages send: the default (`LATEST_API_VERSION`
 * in their dist, not exported) and every `serviceVersion` a caller may pick. Bumping a package
 * re-runs this check against its new versions.
 */
function installedSdkVersions(): { pkg: string; defaults: string[]; all: string[] }[] {
  const root = new URL('../node_modules/@azure/', import.meta.url).pathname;
  const jsFiles = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? jsFiles(join(dir, e.name)) : e.name.endsWith('.js') ? [join(dir, e.name)] : [],
    );
  const found = (texts: string[], re: RegExp) => texts.flatMap((t) => [...t.matchAll(re)].map((m) => m[1]!));
  return readdirSync(root)
    .filter((d) => d.startsWith('keyvault-') && d !== 'keyvault-common')
    .map((d) => {
      const texts = jsFiles(join(root, d, 'dist', 'esm')).map((f) => readFileSync(f, 'utf8'));
      // The client's default, and the generated client's own fallback (`options.apiVersion ?? "…"`).
      const defaults = [
        ...new Set([
          ...found(texts, /LATEST_API_VERSION = "([^"]+)"/g),
          ...found(texts, /apiVersion \?\? "([^"]+)"/g),
        ]),
      ];
      const known = found(texts, /KnownVersions\["\w+"\] = "([^"]+)"/g);
      return { pkg: d, defaults, all: [...new Set([...defaults, ...known])] };
    });
}

describe('vault api-versions', () => {
  test('the installed @azure/keyvault-* SDKs: every version they may send is served as itself', () => {
    const sdks = installedSdkVersions();
    assert.ok(
      sdks.some((s) => s.pkg === 'keyvault-secrets') && sdks.some((s) => s.pkg === 'keyvault-keys'),
      'the secrets and keys SDKs are installed',
    );
    for (const { pkg, defaults, all } of sdks) {
      assert.equal(defaults.length, 1, `${pkg}: one LATEST_API_VERSION found in its dist`);
      assert.ok(all.length > 1, `${pkg}: its KnownVersions were found`);
      for (const v of all) {
        // A refusal here means the SDK as shipped would not work: accept the version (vault-api-version.ts).
        const r = vaultApiVersion(v);
        assert.equal(
          r.served,
          v,
          `${pkg} sends ${v}, served as ${r.served}: add it to the known versions (and check what it changes)`,
        );
      }
    }
  });

  test('known versions as themselves; a newer date form as the newest known; the rest 400', () => {
    for (const v of [
      '2016-10-01',
      '7.0',
      '7.3',
      '7.4',
      '7.5',
      '7.6',
      '7.6-preview.2',
      '2025-07-01',
      '2026-04-01',
    ])
      assert.deepEqual(vaultApiVersion(v), { requested: v, served: v });
    for (const v of ['2026-04-02', '2026-10-01', '2027-01-01-preview', '2099-12-31'])
      assert.deepEqual(vaultApiVersion(v), { requested: v, served: LATEST_VAULT_API_VERSION });
    const refused = [
      undefined,
      '',
      '7.7',
      '8.0',
      '9.9',
      '2025-01-01', // well-formed but older than the newest and unknown
      '2026-04-01-preview', // not a newer date
      '2026-13-01',
      '2027-02-30',
      '2027-1-1',
      '2027-01-01-beta',
      ' 2027-01-01',
      '2027-01-01T00:00:00Z',
    ];
    for (const v of refused)
      assert.throws(
        () => vaultApiVersion(v),
        (e: { code?: string; status?: number; message?: string }) =>
          e.code === 'BadParameter' && e.status === 400,
        String(v),
      );
    assert.throws(() => vaultApiVersion('7.9'), {
      message: `The specified version (7.9) is not recognized. Consider using the latest supported version (${LATEST_VAULT_API_VERSION}).`,
    });
  });
});
