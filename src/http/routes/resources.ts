import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Caller } from '../../access/caller.js';
import { LatchkeyError } from '../../errors/index.js';
import type { Services } from '../../server/services.js';
import type { Authenticate } from '../auth.js';
import { issuerBaseOf, queryParam } from '../request.js';
import { parse } from '../validate.js';
import { armCaller } from './arm-request.js';

/** A resource as `GET /subscriptions/{s}/resources` lists it (the generic ARM view). */
export interface GenericResource {
  id: string;
  name: string;
  type: string;
  location: string;
  tags: Record<string, string>;
}

/** The resource types Latchkey serves, in the order they are listed. */
const TYPES = [
  'Microsoft.KeyVault/vaults',
  'Microsoft.ManagedIdentity/userAssignedIdentities',
  'Microsoft.Web/sites',
  'Microsoft.Latchkey/hosts',
] as const;

/**
 * The subset of ARM's OData `$filter` for resources that the Azure CLI and SDKs send:
 * `resourceType eq '…'`, `name eq '…'`, `resourceGroup eq '…'`, joined by `and`.
 * Values compare case-insensitively, as ARM does. Anything else is refused, never ignored.
 */
export function parseResourceFilter(filter: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (filter === undefined || filter.trim() === '') return out;
  if (filter.length > 1024) throw badFilter('The $filter is too long.');
  for (const clause of filter.trim().split(/\s+and\s+/i)) {
    const m = /^(resourceType|name|resourceGroup)\s+eq\s+'((?:[^']|'')*)'$/i.exec(clause.trim());
    if (!m) {
      throw badFilter(
        `Unsupported $filter clause '${clause.slice(0, 80)}': use resourceType, name or resourceGroup eq '…', joined by 'and'.`,
      );
    }
    const field = m[1]!.toLowerCase();
    if (out.has(field)) throw badFilter(`The $filter names ${m[1]} twice.`);
    out.set(field, m[2]!.replace(/''/g, "'").toLowerCase());
  }
  return out;
}
const badFilter = (message: string) => new LatchkeyError('InvalidFilterInQueryString', message);

/**
 * ARM's generic resource list (what `az resource list` and `az keyvault show -n NAME` without a
 * resource group use to find a resource), the cloud metadata document the Azure CLI registers
 * a cloud from, and the empty Managed HSM lists `az keyvault list` asks for.
 */
export async function resourceRoutes(
  app: FastifyInstance,
  opts: {
    services: Pick<
      Services,
      'apps' | 'config' | 'hosts' | 'issuerBases' | 'readableScopes' | 'scopes' | 'userIdentities' | 'vaults'
    >;
    authenticate: Authenticate;
  },
): Promise<void> {
  const s = opts.services;
  const caller = armCaller(opts.authenticate, s.config.managementResource, '2021-04-01');

  /** Every resource of one type the caller may read, in a subscription (and resource group). */
  const ofType = async (
    c: Caller,
    type: (typeof TYPES)[number],
    sub: string,
    rg?: string,
  ): Promise<GenericResource[]> => {
    switch (type) {
      case 'Microsoft.KeyVault/vaults':
        return (await s.vaults.list(c, sub, rg)).map((v) => ({
          id: v.armId,
          name: v.name,
          type,
          location: v.location,
          tags: v.tags,
        }));
      case 'Microsoft.ManagedIdentity/userAssignedIdentities':
        return (await s.userIdentities.list(c, sub, rg)).map((i) => ({
          id: i.armId,
          name: i.name,
          type,
          location: i.location,
          tags: i.tags,
        }));
      case 'Microsoft.Web/sites':
        return (await s.apps.list(c, sub, rg)).map((a) => ({
          id: a.armId,
          name: a.name,
          type,
          location: a.location,
          tags: a.tags,
        }));
      case 'Microsoft.Latchkey/hosts':
        return (await s.hosts.list(c, sub, rg)).map((h) => ({
          id: h.armId,
          name: h.name,
          type,
          location: 'local',
          tags: {},
        }));
    }
  };

  const params = z.object({ sub: z.string().min(1).max(64), rg: z.string().min(1).max(90).optional() });
  const list = async (req: FastifyRequest) => {
    const c = await caller(req);
    const p = parse(params, req.params, 'path');
    const filter = parseResourceFilter(queryParam(req, '$filter'));
    const top = queryParam(req, '$top');
    const max = top === undefined ? 1000 : Number(top);
    if (!Number.isInteger(max) || max < 1 || max > 1000)
      throw new LatchkeyError('BadParameter', '$top must be an integer from 1 to 1000.');
    const rg = p.rg ?? filter.get('resourcegroup');
    await s.readableScopes.listable(c, p.sub, p.rg);
    const wanted = filter.get('resourcetype');
    const name = filter.get('name');
    const out: GenericResource[] = [];
    for (const type of TYPES) {
      if (wanted !== undefined && wanted !== type.toLowerCase()) continue;
      for (const r of await ofType(c, type, p.sub, rg)) {
        if (name !== undefined && r.name.toLowerCase() !== name) continue;
        out.push(r);
      }
    }
    return { value: out.slice(0, max) };
  };
  app.get('/subscriptions/:sub/resources', list);
  app.get('/subscriptions/:sub/resourceGroups/:rg/resources', list);

  // Latchkey has no Managed HSMs; `az keyvault list` and `list-deleted` ask for them too.
  const noHsms = async (req: FastifyRequest) => {
    const c = await caller(req);
    const p = parse(params, req.params, 'path');
    await s.scopes.subscription(c.tenantId, p.sub);
    return { value: [] };
  };
  app.get('/subscriptions/:sub/providers/Microsoft.KeyVault/managedHSMs', noHsms);
  app.get('/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.KeyVault/managedHSMs', noHsms);
  app.get('/subscriptions/:sub/providers/Microsoft.KeyVault/deletedManagedHSMs', noHsms);

  /**
   * Cloud metadata (no authentication, as in Azure). `api-version=2019-05-01` and later: the
   * array `ARM_CLOUD_METADATA_URL` points the Azure CLI at; `1.0`: the older single object
   * `az cloud register --endpoint-resource-manager` reads.
   */
  app.get('/metadata/endpoints', async (req, reply) => {
    const version = queryParam(req, 'api-version');
    const base = issuerBaseOf(req, s.issuerBases());
    const port = new URL(base).port;
    const login = `${base}/adfs`;
    const audiences = [s.config.managementResource, `${s.config.managementResource}/`];
    reply.header('cache-control', 'max-age=3600, public');
    if (version === '1.0') {
      return {
        galleryEndpoint: '',
        graphEndpoint: `${base}/`,
        portalEndpoint: `${base}/console/`,
        authentication: { loginEndpoint: login, audiences },
      };
    }
    if (!version || !/^\d{4}-\d{2}-\d{2}$/.test(version) || version < '2019-05-01') {
      throw new LatchkeyError(
        'InvalidApiVersion',
        "The 'api-version' query parameter must be 1.0 or a date from 2019-05-01 (e.g. api-version=2022-09-01).",
      );
    }
    return [
      {
        name: 'Latchkey',
        portal: `${base}/console/`,
        resourceManager: `${base}/`,
        authentication: {
          loginEndpoint: login,
          audiences,
          tenant: 'adfs',
          identityProvider: 'ADFS',
        },
        graph: `${base}/`,
        graphAudience: `${base}/`,
        microsoftGraphResourceId: `${base}/`,
        media: '',
        batch: '',
        sqlManagement: '',
        gallery: '',
        vmImageAliasDoc: '',
        activeDirectoryDataLake: '',
        suffixes: {
          keyVaultDns: port ? `${s.config.vaultDomain}:${port}` : s.config.vaultDomain,
        },
      },
    ];
  });
}
