import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  KeyVaultReferenceError,
  parseKeyVaultReference,
  referenceUrl,
} from '../src/identity-endpoint/kv-references.js';

const TEMPLATE = 'https://{name}.vault.localhost:8443';
const V = '0123456789abcdef0123456789abcdef';

describe('Key Vault references (App Service syntax)', () => {
  test('plain values are not references', () => {
    for (const v of ['', 'hello', 'Microsoft.KeyVault(SecretUri=x)', '@Microsoft.KeyVaultish'])
      assert.equal(parseKeyVaultReference(v), null);
  });

  test('SecretUri, with and without a version or trailing slash', () => {
    assert.deepEqual(
      parseKeyVaultReference(
        '@Microsoft.KeyVault(SecretUri=https://shop.vault.localhost:8443/secrets/npm-token/)',
      ),
      {
        vaultName: 'shop',
        secretName: 'npm-token',
        version: null,
        origin: 'https://shop.vault.localhost:8443',
      },
    );
    const pinned = parseKeyVaultReference(
      `@Microsoft.KeyVault(SecretUri=https://Shop.vault.localhost/secrets/db/${V.toUpperCase()})`,
    )!;
    assert.equal(pinned.vaultName, 'shop');
    assert.equal(pinned.version, V);
    assert.equal(referenceUrl(pinned, TEMPLATE), `https://shop.vault.localhost:8443/secrets/db/${V}`);
  });

  test('VaultName;SecretName[;SecretVersion], keys case-insensitive, spaces tolerated', () => {
    const r = parseKeyVaultReference(' @Microsoft.KeyVault(vaultname=shop; SecretName=db ;SecretVersion=) ')!;
    assert.deepEqual(r, { vaultName: 'shop', secretName: 'db', version: null, origin: null });
    assert.equal(referenceUrl(r, TEMPLATE), 'https://shop.vault.localhost:8443/secrets/db');
    const v = parseKeyVaultReference(`@Microsoft.KeyVault(VaultName=shop;SecretName=db;SecretVersion=${V})`)!;
    assert.equal(v.version, V);
  });

  test('malformed references are errors, not literals', () => {
    for (const bad of [
      '@Microsoft.KeyVault(SecretUri=https://shop.vault.localhost/secrets/db',
      '@Microsoft.KeyVault(VaultName=shop)',
      '@Microsoft.KeyVault(SecretName=db)',
      '@Microsoft.KeyVault(VaultName=shop;SecretName=db;Color=blue)',
      '@Microsoft.KeyVault(VaultName=-bad;SecretName=db)',
      '@Microsoft.KeyVault(VaultName=shop;SecretName=no_underscores)',
      '@Microsoft.KeyVault(VaultName=shop;SecretName=db;SecretVersion=123)',
      '@Microsoft.KeyVault(SecretUri=http://shop.vault.localhost/secrets/db)',
      '@Microsoft.KeyVault(SecretUri=https://shop.vault.localhost/keys/db)',
      '@Microsoft.KeyVault(SecretUri=https://shop.vault.localhost/secrets/db?x=1)',
      '@Microsoft.KeyVault(SecretUri=https://u:p@shop.vault.localhost/secrets/db)',
      '@Microsoft.KeyVault(SecretUri=not a url)',
      '@Microsoft.KeyVault(SecretUri=https://shop.vault.localhost/secrets/db;VaultName=shop)',
    ])
      assert.throws(() => parseKeyVaultReference(bad), KeyVaultReferenceError, bad);
  });

  test('a SecretUri outside this installation’s vault domain is refused; the port is always ours', () => {
    const evil = parseKeyVaultReference(
      '@Microsoft.KeyVault(SecretUri=https://shop.evil.example/secrets/db)',
    )!;
    assert.throws(() => referenceUrl(evil, TEMPLATE), /not a vault of this installation/);
    const lookalike = parseKeyVaultReference(
      '@Microsoft.KeyVault(SecretUri=https://shop.vault.localhost.evil.example/secrets/db)',
    )!;
    assert.throws(() => referenceUrl(lookalike, TEMPLATE), /not a vault of this installation/);
    const otherPort = parseKeyVaultReference(
      '@Microsoft.KeyVault(SecretUri=https://shop.vault.localhost:9999/secrets/db)',
    )!;
    assert.equal(referenceUrl(otherPort, TEMPLATE), 'https://shop.vault.localhost:8443/secrets/db');
  });
});
