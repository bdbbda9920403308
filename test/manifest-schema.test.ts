import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import Ajv2020 from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';
import { manifestJsonSchema } from '../src/provisioning/manifest-json-schema.js';
import { loadManifest, parsePath } from '../src/provisioning/manifest-load.js';
import { formatPath, parseManifest } from '../src/provisioning/manifest-schema.js';

const read = (p: string) => readFileSync(new URL(`../${p}`, import.meta.url), 'utf8');
const EXAMPLE = 'docs/examples/shop.manifest.yaml';

describe('manifest schema', () => {
  test('schemas/manifest.schema.json is up to date (node --import tsx scripts/gen-manifest-schema.ts)', () => {
    assert.deepEqual(JSON.parse(read('schemas/manifest.schema.json')), manifestJsonSchema());
  });

  test('the JSON Schema and the zod schema agree on the example and on bad documents', () => {
    const ajv = new (Ajv2020 as unknown as typeof Ajv2020.default)({ strict: false });
    const validate = ajv.compile(JSON.parse(read('schemas/manifest.schema.json')));
    const example = parseYaml(read(EXAMPLE));
    assert.equal(validate(example), true, JSON.stringify(validate.errors));
    assert.doesNotThrow(() => parseManifest(example));
    const bad = [
      { ...example, apiVersion: 'latchkey/v2' },
      { ...example, extra: 1 },
      { ...example, vaults: [{ name: 'x'.repeat(25) }] },
      { ...example, roleAssignments: [{ principal: { robot: 'x' }, role: 'Owner', scope: '/' }] },
      { ...example, secrets: [{ vault: 'v', name: 'n', value: { generate: { length: 2 } } }] },
    ];
    for (const b of bad) {
      assert.equal(validate(b), false, JSON.stringify(b).slice(0, 200));
      assert.throws(
        () => parseManifest(b),
        (e: Error & { code?: string }) => e.code === 'ManifestInvalid',
      );
    }
  });

  test('errors in a file name the JSON path and line:column', () => {
    const text = read(EXAMPLE).replace(
      '    softDeleteRetentionInDays: 7',
      '    softDeleteRetentionInDays: 3',
    );
    assert.throws(
      () => loadManifest(text, 'shop.yaml'),
      (e: Error) => /^shop\.yaml:10:5: vaults\[0\]\.softDeleteRetentionInDays: /.test(e.message),
    );
    const unknown = read(EXAMPLE).replace('  - name: ci-deployer', '  - name: ci-deployer\n    colour: red');
    assert.throws(
      () => loadManifest(unknown, 'm.yaml'),
      (e: Error) => e.message.startsWith('m.yaml:7:5: identities[0].colour: unknown field'),
    );
    assert.throws(() => loadManifest('a: [1, 2', 'broken.yaml'), /broken\.yaml:\d+:\d+: not valid YAML/);
    assert.throws(
      () => loadManifest('{"apiVersion": "latchkey/v1"}', 'm.json'),
      // The missing required field, named at the document's start: the exact message, not any
      // message that happens to contain "tenant".
      (e: Error) => e.message === 'm.json:1:1: tenant: Invalid input: expected string, received undefined',
    );
  });

  test('paths round-trip between text and arrays', () => {
    const p = ['apps', 0, 'identity', 'userAssignedIdentities', 3];
    assert.equal(formatPath(p), 'apps[0].identity.userAssignedIdentities[3]');
    assert.deepEqual(parsePath(formatPath(p)), p);
  });
});
