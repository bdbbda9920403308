import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createEndpointCore, SettingError } from '../src/identity-endpoint/endpoint-core.js';
import { createSessionRegistry } from '../src/identity-endpoint/sessions.js';
import { KeyVaultReferenceError, parseKeyVaultReference, referenceUrl } from '../src/lib/kv-references.js';

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
      `@Microsoft.KeyVault(SecretUri=https://Shop.vault.localhost:8443/secrets/db/${V.toUpperCase()})`,
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
    assert.throws(() => referenceUrl(otherPort, TEMPLATE), /not a vault of this installation/);
  });

  test('issue 14.5: only https://{vault}.{vault domain}[:our port]/secrets/{name}[/{version}] resolves', () => {
    const at = (uri: string) => `@Microsoft.KeyVault(SecretUri=${uri})`;
    const refused = [
      'https://evil.example:8443/secrets/x',
      'https://shop.vault.localhost.evil.test:8443/secrets/x',
      'https://shop.evil.test/secrets/x',
      'http://shop.vault.localhost:8443/secrets/x',
      'https://shop.vault.localhost:8443@evil/secrets/x',
      'https://shop.vault.localhost:8443\\@evil/secrets/x',
      'https://shop.vault.localhost:9443/secrets/x',
      'https://shop.vault.localhost/secrets/x', // 443, but this installation serves vaults on 8443
      'https://vault.localhost:8443/secrets/x', // no vault label
      'https://$`evil.localhost:9999/secrets/x', // `$\`` would expand to "https://" in String.replace
      "https://$'.vault.localhost:8443/secrets/x",
      'https://$&.vault.localhost:8443/secrets/x',
      'https://s.vault.localhost:8443/secrets/x', // not a vault name (3–24 characters)
      'https://shop.vault.localhost:8443/secrets/x/y/z',
      'https://shop.vault.localhost:8443/secrets//x',
      'https://shop.vault.localhost:8443/secrets/x/not-a-version',
      'https://shop.vault.localhost:8443/keys/x',
      'https://shop.vault.localhost:8443/secrets/x?api-version=1',
      'https://shop.vault.localhost:8443/secrets/x?',
      'https://shop.vault.localhost:8443/secrets/x#',
    ];
    for (const uri of refused)
      assert.throws(
        () => referenceUrl(parseKeyVaultReference(at(uri))!, TEMPLATE),
        KeyVaultReferenceError,
        uri,
      );
    const ok: [string, string][] = [
      ['https://shop.vault.localhost:8443/secrets/x', 'https://shop.vault.localhost:8443/secrets/x'],
      ['https://SHOP.Vault.LocalHost:8443/secrets/x/', 'https://shop.vault.localhost:8443/secrets/x'],
      [
        `https://shop.vault.localhost:8443/secrets/x/${V}/`,
        `https://shop.vault.localhost:8443/secrets/x/${V}`,
      ],
    ];
    for (const [uri, url] of ok) assert.equal(referenceUrl(parseKeyVaultReference(at(uri))!, TEMPLATE), url);
    // On 443 the port is absent (or the default, which URL drops).
    const t443 = 'https://{name}.vault.example.com';
    for (const uri of [
      'https://shop.vault.example.com/secrets/x',
      'https://shop.vault.example.com:443/secrets/x',
    ])
      assert.equal(
        referenceUrl(parseKeyVaultReference(at(uri))!, t443),
        'https://shop.vault.example.com/secrets/x',
      );
    assert.throws(
      () => referenceUrl(parseKeyVaultReference(at('https://shop.vault.example.com:8443/secrets/x'))!, t443),
      /not a vault of this installation: use https:\/\/\{vault\}\.vault\.example\.com\/secrets/,
    );
    // The template is expanded literally, whatever the name holds.
    assert.throws(
      () => referenceUrl({ vaultName: '$`x', secretName: 'x', version: null, origin: null }, TEMPLATE),
      KeyVaultReferenceError,
    );
  });

  test('issue 14.5: at run time a bad reference is refused before any token is asked for or sent', async () => {
    const identity = {
      type: 'SystemAssigned' as const,
      principalId: '00000000-0000-4000-8000-000000000001',
      clientId: '00000000-0000-4000-8000-000000000002',
      resourceId: '/subscriptions/x/resourceGroups/default/providers/Microsoft.Web/sites/app1',
    };
    let settings: Record<string, string> = {};
    const tokensAsked: string[] = [];
    const sent: string[] = [];
    const now = 1_700_000_000_000;
    // Stubs of the endpoint's collaborators, with only what a session uses (the types are wide).
    const core = createEndpointCore({
      clock: { now: () => now, monotonic: () => now },
      controlPlane: {
        manifest: async () => ({
          hostId: 'h',
          hostName: 'h',
          tenantId: 't',
          vaultResource: 'https://vault.azure.net',
          vaultUrlTemplate: TEMPLATE,
          apps: [
            {
              name: 'app1',
              id: identity.resourceId,
              identities: [identity],
              keyVaultReferenceIdentity: identity,
            },
          ],
        }),
        appSettings: async () => settings,
        getWithToken: async (url: string) => {
          sent.push(url);
          return { status: 200, headers: {}, body: { value: 'resolved' }, text: '' };
        },
      } as unknown as Parameters<typeof createEndpointCore>[0]['controlPlane'],
      roller: { known: () => [], forget: () => {} } as unknown as Parameters<
        typeof createEndpointCore
      >[0]['roller'],
      cache: {
        get: async (principalId: string) => {
          tokensAsked.push(principalId);
          return { accessToken: 'app-token', expiresOn: now / 1000 + 3600 };
        },
        peek: () => undefined,
        drop: () => {},
      } as unknown as Parameters<typeof createEndpointCore>[0]['cache'],
      sessions: createSessionRegistry(),
      refreshMs: 60_000,
      log: { warn: () => {} },
    });
    for (const uri of [
      'https://$`evil.localhost:9999/secrets/x', // the old String.replace sent the token to https://https
      'https://evil.example:8443/secrets/x',
      'https://shop.vault.localhost.evil.test:8443/secrets/x',
      'http://shop.vault.localhost:8443/secrets/x',
      'https://shop.vault.localhost:8443@evil/secrets/x',
      'https://shop.vault.localhost:9443/secrets/x',
    ]) {
      settings = { PLAIN: 'p', REF: `@Microsoft.KeyVault(SecretUri=${uri})` };
      await assert.rejects(core.createSession('app1', null), (e: unknown) => {
        assert.ok(e instanceof SettingError, uri);
        assert.equal(e.setting, 'REF');
        assert.match(e.message, /^app setting 'REF': malformed Key Vault reference \(/);
        return true;
      });
      assert.deepEqual(sent, [], `${uri}: nothing was sent`);
      assert.deepEqual(tokensAsked, [], `${uri}: no token was even asked for`);
    }
    // The same endpoint resolves a good reference (against this installation's vault origin only).
    settings = { REF: '@Microsoft.KeyVault(SecretUri=https://shop.vault.localhost:8443/secrets/x)' };
    const ok = await core.createSession('app1', null);
    assert.deepEqual(ok.env, { REF: 'resolved' });
    assert.deepEqual(sent, ['https://shop.vault.localhost:8443/secrets/x?api-version=7.5']);
  });
});
