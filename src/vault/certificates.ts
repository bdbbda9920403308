import type { Access } from '../access/decision.js';
import { LatchkeyError } from '../errors/index.js';
import type { ObjectCallContext } from './object-guard.js';

const C = 'Microsoft.KeyVault/vaults/certificates';

/**
 * Certificates until Latchkey stores them: a vault holds none. Reads are authorized as Azure
 * authorizes them (RBAC `certificates/read`, or the access policy's certificates `list`/`get`),
 * then lists are empty and a named certificate is 404 `CertificateNotFound`. Clients that list
 * certificates (CertificateClient, az keyvault certificate list) work; none sees "not supported".
 *
 * @example
 * await certificates.list(ctx); // [] once the caller may list certificates
 */
export function createCertificates(deps: { access: Pick<Access, 'requireVaultData'> }) {
  const require = (ctx: ObjectCallContext, permission: 'list' | 'get', name?: string) =>
    deps.access.requireVaultData(ctx.caller, ctx.vault.access, {
      dataAction: `${C}/read`,
      objectScope: name === undefined ? ctx.vault.armId : `${ctx.vault.armId}/certificates/${name}`,
      policy: { kind: 'certificates', permission },
    });
  return {
    async list(ctx: ObjectCallContext): Promise<never[]> {
      await require(ctx, 'list');
      return [];
    },
    async get(ctx: ObjectCallContext, name: string, version?: string): Promise<never> {
      await require(ctx, 'get', name);
      throw new LatchkeyError(
        'CertificateNotFound',
        `A certificate with (name/id) ${name}${version ? `/${version}` : ''} was not found in this key vault. If you recently deleted this certificate you may be able to recover it using the correct recovery command.`,
      );
    },
    async getDeleted(ctx: ObjectCallContext, name: string): Promise<never> {
      await require(ctx, 'get', name);
      throw new LatchkeyError('CertificateNotFound', `Deleted Certificate not found: ${name}`);
    },
  };
}
export type Certificates = ReturnType<typeof createCertificates>;
