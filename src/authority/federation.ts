import https from 'node:https';
import { rootCertificates } from 'node:tls';
import type * as Jose from 'jose';
import type { JSONWebKeySet } from 'jose';
import { type FederationSettings, TOKEN_EXCHANGE_AUDIENCE } from '../config/index.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { loadJose } from '../lib/jose.js';
import {
  federatedCredentialStore,
  type StoredFederatedCredential,
} from '../storage/management/federated-credential-store.js';
import type { Database } from '../storage/port.js';
import { assertionPayload } from './client-assertion.js';
import type { TenantIssuers } from './tenant-issuers.js';

/**
 * Workload identity federation: an external OIDC token (a GitHub Actions job's,
 * a Kubernetes service account's) sent as the client assertion of a
 * client-credentials request is exchanged for a token of the user-assigned
 * identity that has a federated identity credential trusting its issuer,
 * subject and audience (docs/federation.md).
 *
 * The issuer's keys come from `{iss}/.well-known/openid-configuration` →
 * `jwks_uri`, fetched only for issuers on the operator's allow-list
 * (`federation.allowedIssuers`, narrowed by the tenant's own list when its admin set one), over HTTPS, bounded in size and time, without
 * redirects, and with `jwks_uri` on the issuer's own origin: a federated
 * credential is no way to make Latchkey reach another address. Keys are
 * cached for at most an hour; an unknown `kid` refreshes them at most once per
 * minute per issuer, so a flood of made-up kids cannot make Latchkey hammer the issuer.
 */

/** Algorithms an external token may be signed with: asymmetric only (never `none` or HMAC). */
export const FEDERATION_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
] as const;
/** The audience Azure proposes for federated credentials. */
export const DEFAULT_FEDERATION_AUDIENCE = TOKEN_EXCHANGE_AUDIENCE;

const MAX_ASSERTION = 16_384;
const MAX_RESPONSE_BYTES = 64 * 1024;
const MAX_KEYS = 100;
const CACHE_MS = 3_600_000;
const MIN_REFRESH_MS = 60_000;
const FAILURE_BACKOFF_MS = 5_000;
const CLOCK_SKEW_S = 60;

/** An AADSTS-coded refusal of an exchange (the token endpoint answers it as the client error). */
const refuse = (
  aad: number,
  message: string,
  code: 'invalid_client' | 'invalid_request' = 'invalid_client',
) =>
  new LatchkeyError(code, message, {
    status: code === 'invalid_client' ? 401 : 400,
    aadCodes: [aad],
  });

const short = (v: unknown, n = 200): string => (typeof v === 'string' ? v.slice(0, n) : '');

/**
 * True when a client assertion is an external token to exchange rather than the client's own
 * certificate-signed assertion: its (unverified) `iss` is not the client id. Nothing is trusted
 * from this peek; it only chooses which verifier runs.
 */
export async function isFederatedAssertion(assertion: string, clientId: string): Promise<boolean> {
  if (assertion.length > MAX_ASSERTION) return false;
  try {
    // Decoded as jose's decodeJwt would, and remembered for the certificate verifier (one decode).
    const { iss } = assertionPayload(assertion);
    return typeof iss === 'string' && iss.toLowerCase() !== clientId.toLowerCase();
  } catch {
    return false;
  }
}

/** An issuer URL a federated credential may name: https, no credentials, query or fragment, ≤ 600 characters. */
export function checkIssuerUrl(issuer: string): string | undefined {
  if (issuer.length > 600) return 'The issuer must be at most 600 characters.';
  let u: URL;
  try {
    u = new URL(issuer);
  } catch {
    return 'The issuer must be an https URL.';
  }
  if (u.protocol !== 'https:') return 'The issuer must be an https URL.';
  if (u.username || u.password || u.search || u.hash || issuer.includes('#') || issuer.includes('?'))
    return 'The issuer URL must not carry credentials, a query or a fragment.';
  return undefined;
}

/** How an issuer fetch ended, for metrics (a closed set of label values). */
export type IssuerFetchOutcome = 'ok' | 'http_error' | 'too_large' | 'timeout' | 'invalid' | 'network_error';
/** One issuer fetch: which document, how it ended, how long it took. */
export interface IssuerFetch {
  document: 'discovery' | 'jwks';
  outcome: IssuerFetchOutcome;
  seconds: number;
}

/** Marks an error with the outcome it counts as. */
class FetchError extends Error {
  constructor(
    message: string,
    readonly outcome: IssuerFetchOutcome,
  ) {
    super(message);
  }
}

/** Fetches JSON over HTTPS: no redirects, at most `maxBytes`, within `timeoutMs` in all. */
function fetchJson(url: string, o: { ca?: string; timeoutMs: number; maxBytes: number }): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    if (u.protocol !== 'https:') return reject(new FetchError('not https', 'invalid'));
    const req = https.get(
      u,
      {
        ...(o.ca ? { ca: [...rootCertificates, o.ca] } : {}),
        headers: { accept: 'application/json' },
        agent: false,
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return fail(
            new FetchError(
              `HTTP ${res.statusCode ?? 0}${res.headers.location ? ' (redirects are not followed)' : ''}`,
              'http_error',
            ),
          );
        }
        const declared = Number(res.headers['content-length'] ?? 0);
        if (declared > o.maxBytes) return fail(new FetchError('response too large', 'too_large'));
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > o.maxBytes) return fail(new FetchError('response too large', 'too_large'));
          chunks.push(c);
        });
        res.on('end', () => {
          if (done) return;
          try {
            finish(() => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown));
          } catch {
            fail(new FetchError('response is not JSON', 'invalid'));
          }
        });
        res.on('error', fail);
      },
    );
    let done = false;
    const timer = setTimeout(() => fail(new FetchError('timed out', 'timeout')), o.timeoutMs);
    function finish(f: () => void) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      f();
    }
    function fail(e: Error) {
      finish(() => {
        req.destroy();
        reject(e);
      });
    }
    req.on('error', fail);
  });
}

interface IssuerKeys {
  jwks: JSONWebKeySet;
  keySet: ReturnType<typeof Jose.createLocalJWKSet>;
  kids: ReadonlySet<string>;
  /** The monotonic clock's ms. */
  fetchedAt: number;
}

export interface ExchangeResult {
  credential: StoredFederatedCredential;
  issuer: string;
  subject: string;
}

/** An audit record of an exchange (the server passes the audit log's `record`; authority does not import audit). */
export interface ExchangeAuditEvent {
  tenantId: string;
  callerOid: string;
  callerAppId: string;
  callerKind: 'servicePrincipal';
  operation: 'FederatedTokenExchange';
  target: string;
  status: number;
  clientIp: string;
  details: Record<string, string | number | null>;
}

export function createFederation(deps: {
  db: Database;
  clock: Clock;
  /** Durably records an exchange (resolves once written). */
  audit: (e: ExchangeAuditEvent) => Promise<void>;
  settings: FederationSettings | undefined;
  /** The server's issuer allow-list narrowed per tenant (src/authority/tenant-issuers.ts). */
  issuers: Pick<TenantIssuers, 'refusal'>;
  /** Told of every issuer fetch (discovery or JWKS), for metrics. */
  onFetch?: (f: IssuerFetch) => void;
}) {
  const { db, clock, audit } = deps;
  const fetchOpts = {
    ...(deps.settings?.caPem ? { ca: deps.settings.caPem } : {}),
    timeoutMs: deps.settings?.fetchTimeoutMs ?? 5000,
    maxBytes: MAX_RESPONSE_BYTES,
  };
  const cache = new Map<string, IssuerKeys>();
  const inflight = new Map<string, Promise<IssuerKeys>>();
  /** Last fetch attempt per issuer (success or failure): the refresh rate limit. */
  const attempted = new Map<string, { at: number; ok: boolean }>();
  let fetches = 0;

  /** Fetches one issuer document and checks it (`check` throws what makes it unusable); reports the fetch. */
  async function fetchDoc<T>(
    document: IssuerFetch['document'],
    url: string,
    check: (body: unknown) => T,
  ): Promise<T> {
    fetches++;
    const started = performance.now();
    let outcome: IssuerFetchOutcome = 'ok';
    try {
      const body = await fetchJson(url, fetchOpts);
      try {
        return check(body);
      } catch (e) {
        outcome = 'invalid';
        throw e;
      }
    } catch (e) {
      if (outcome === 'ok') outcome = e instanceof FetchError ? e.outcome : 'network_error';
      throw e;
    } finally {
      deps.onFetch?.({ document, outcome, seconds: (performance.now() - started) / 1000 });
    }
  }

  async function load(issuer: string): Promise<IssuerKeys> {
    const base = issuer.replace(/\/+$/, '');
    const jwksUrl = await fetchDoc('discovery', `${base}/.well-known/openid-configuration`, (body) => {
      const meta = body as { issuer?: unknown; jwks_uri?: unknown } | null;
      if (!meta || typeof meta !== 'object' || meta.issuer !== issuer)
        throw new Error("the discovery document's issuer does not match");
      if (typeof meta.jwks_uri !== 'string') throw new Error('the discovery document has no jwks_uri');
      const u = URL.canParse(meta.jwks_uri) ? new URL(meta.jwks_uri) : undefined;
      if (u?.protocol !== 'https:' || u.origin !== new URL(issuer).origin)
        throw new Error("jwks_uri must be https on the issuer's own origin");
      return u;
    });
    const keys = await fetchDoc('jwks', jwksUrl.href, (raw) => {
      const body = raw as { keys?: unknown } | null;
      if (!body || !Array.isArray(body.keys) || body.keys.length > MAX_KEYS)
        throw new Error('the JWKS is not valid');
      // Symmetric keys are dropped: a published "key" must never verify an HMAC token.
      return (body.keys as Record<string, unknown>[]).filter(
        (k) => k && typeof k === 'object' && (k.kty === 'RSA' || k.kty === 'EC'),
      );
    });
    const jwks = { keys } as JSONWebKeySet;
    const { createLocalJWKSet } = await loadJose();
    return {
      jwks,
      keySet: createLocalJWKSet(jwks),
      kids: new Set(keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string')),
      fetchedAt: clock.monotonic(), // monotonic: a wall-clock step must not keep withdrawn keys
    };
  }

  /** The issuer's keys: cached ≤ 1 h; refreshed for an unknown kid at most once a minute. */
  async function keysFor(issuer: string, kid: string | undefined): Promise<IssuerKeys> {
    const now = clock.monotonic();
    const hit = cache.get(issuer);
    const fresh = hit && now - hit.fetchedAt < CACHE_MS;
    if (hit && fresh && (kid === undefined || hit.kids.has(kid))) return hit;
    const last = attempted.get(issuer);
    const wait = last?.ok ? MIN_REFRESH_MS : FAILURE_BACKOFF_MS;
    if (last && now - last.at < wait) {
      if (hit && fresh) return hit; // unknown kid within the rate limit: verification will fail
      if (!last.ok) throw new Error('the issuer was unreachable moments ago');
    }
    let p = inflight.get(issuer);
    if (!p) {
      attempted.set(issuer, { at: now, ok: false });
      p = load(issuer).finally(() => inflight.delete(issuer));
      inflight.set(issuer, p);
    }
    try {
      const keys = await p;
      attempted.set(issuer, { at: keys.fetchedAt, ok: true });
      cache.set(issuer, keys);
      return keys;
    } catch (e) {
      if (hit && fresh) return hit;
      throw e;
    }
  }

  /** Checks the external token and finds the credential it matches; throws an AADSTS-coded refusal. */
  async function check(tenantId: string, principalId: string, assertion: string): Promise<ExchangeResult> {
    if (assertion.length > MAX_ASSERTION) throw refuse(700027, 'The client assertion is too long.');
    const { decodeJwt, decodeProtectedHeader, errors: joseErrors, jwtVerify } = await loadJose();
    let header: ReturnType<typeof Jose.decodeProtectedHeader>;
    let unverified: ReturnType<typeof Jose.decodeJwt>;
    try {
      header = decodeProtectedHeader(assertion);
      unverified = decodeJwt(assertion);
    } catch {
      throw refuse(50027, 'The client assertion is not a valid JWT.', 'invalid_request');
    }
    if (typeof header.alg !== 'string' || !(FEDERATION_ALGORITHMS as readonly string[]).includes(header.alg))
      throw refuse(700027, `The client assertion's algorithm '${short(header.alg, 16)}' is not accepted.`);
    const issuer = short(unverified.iss, 600);
    const credentials = await federatedCredentialStore.listByPrincipal(db, tenantId, principalId);
    const byIssuer = credentials.filter((c) => c.issuer === issuer);
    if (byIssuer.length === 0)
      throw refuse(
        700211,
        `No matching federated identity record found for presented assertion issuer '${issuer}'.`,
      );
    const refusal = await deps.issuers.refusal(tenantId, issuer);
    if (refusal === 'server')
      throw refuse(
        700211,
        `The issuer '${issuer}' is not on this server's list of allowed federation issuers (federation.allowedIssuers).`,
      );
    if (refusal === 'tenant')
      throw refuse(
        700211,
        `The issuer '${issuer}' is not on this tenant's list of allowed federation issuers (a tenant admin sets it).`,
      );
    let keys: IssuerKeys;
    try {
      keys = await keysFor(issuer, typeof header.kid === 'string' ? header.kid : undefined);
    } catch (e) {
      throw refuse(50166, `Request to External OIDC endpoint failed: ${short((e as Error).message)}.`);
    }
    let payload: Awaited<ReturnType<typeof Jose.jwtVerify>>['payload'];
    try {
      ({ payload } = await jwtVerify(assertion, keys.keySet, {
        algorithms: [...FEDERATION_ALGORITHMS],
        issuer,
        currentDate: new Date(clock.now()),
        clockTolerance: CLOCK_SKEW_S,
        requiredClaims: ['iss', 'sub', 'aud', 'exp'],
      }));
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired)
        throw refuse(700024, 'Client assertion is not within its valid time range (expired).');
      if (e instanceof joseErrors.JWTClaimValidationFailed && (e.claim === 'nbf' || e.claim === 'iat'))
        throw refuse(700024, 'Client assertion is not within its valid time range.');
      throw refuse(700027, 'Client assertion failed signature validation.');
    }
    const now = Math.floor(clock.now() / 1000);
    if (typeof payload.iat === 'number' && payload.iat > now + CLOCK_SKEW_S)
      throw refuse(700024, 'Client assertion is not within its valid time range (issued in the future).');
    const subject = short(payload.sub, 600);
    const audiences = typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? []);
    const bySubject = byIssuer.filter((c) => c.subject === subject);
    if (bySubject.length === 0)
      throw refuse(
        700213,
        `No matching federated identity record found for presented assertion subject '${subject}'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion.`,
      );
    const match = bySubject.find((c) => c.audiences.some((a) => audiences.includes(a)));
    if (!match)
      throw refuse(
        700212,
        `No matching federated identity record found for presented assertion audience '${short(audiences[0])}'.`,
      );
    return { credential: match, issuer, subject };
  }

  return {
    /**
     * Verifies an external token for the principal (the identity's, found by client id) and audits
     * the exchange, refused or not, with the external issuer and subject.
     */
    async exchange(input: {
      tenantId: string;
      principalId: string;
      clientId: string;
      assertion: string;
      clientIp: string;
    }): Promise<ExchangeResult> {
      let unverified: { iss?: unknown; sub?: unknown } = {};
      const { decodeJwt } = await loadJose();
      try {
        unverified = decodeJwt(input.assertion);
      } catch {}
      const record = (status: number, details: Record<string, string | number | null>) =>
        audit({
          tenantId: input.tenantId,
          callerOid: input.principalId,
          callerAppId: input.clientId,
          callerKind: 'servicePrincipal',
          operation: 'FederatedTokenExchange',
          target: input.clientId,
          status,
          clientIp: input.clientIp,
          details,
        });
      try {
        const r = await check(input.tenantId, input.principalId, input.assertion);
        await record(200, { issuer: r.issuer, subject: r.subject, credential: r.credential.name });
        return r;
      } catch (e) {
        if (e instanceof LatchkeyError)
          await record(e.status, {
            // As presented (unverified): what the caller claimed, for the investigation.
            claimedIssuer: short(unverified.iss, 600) || null,
            claimedSubject: short(unverified.sub, 600) || null,
            error: e.aadCodes[0] ?? null,
          });
        throw e;
      }
    },
    /** Issuer fetches made so far (discovery and JWKS documents), for metrics and tests. */
    fetchCount: (): number => fetches,
  };
}
export type Federation = ReturnType<typeof createFederation>;
