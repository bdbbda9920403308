// Client assertions (RFC 7523) as the bench sends them: the `tokens` scenario and
// `bench/profile.ts assertion|assertion-es256`.
//
// PS256 over an RSA-2048 certificate is what the official clients send: @azure/identity's
// ClientCertificateCredential (through @azure/msal-node's ClientAssertion: PS256 when it has the
// certificate's SHA-256 thumbprint, as it always does since 4.x, with `x5t#S256` in the header) and
// Python's azure-identity (msal, RS256/PS256). ES256 over a P-256 certificate is also accepted by
// Latchkey and kept as a second figure.
//
// An RSA-2048 signature costs the load generator ~0.6–0.9 ms, more than a token costs the server,
// so PS256 assertions are signed before the load starts, in one child process per core
// (`presignedAssertionBodies`), and taken one per request during the run.
import 'reflect-metadata';
import { fork } from 'node:child_process';
import {
  constants,
  createHash,
  createPrivateKey,
  type KeyObject,
  randomUUID,
  sign,
  webcrypto,
} from 'node:crypto';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export type AssertionAlg = 'PS256' | 'ES256';

export interface AssertionCertificate {
  alg: AssertionAlg;
  /** The certificate to register with the application. */
  pem: string;
  key: KeyObject;
  /** base64url SHA-256 of the certificate's DER: the header's `x5t#S256`. */
  x5tS256: string;
}

/** What a signer process needs to sign bodies. */
interface SignerInput {
  alg: AssertionAlg;
  pkcs8Pem: string;
  x5tS256: string;
  appId: string;
  tokenUrl: string;
  scope: string;
  count: number;
}

/** JSON as a JWS part: base64url of its UTF-8 (also the tokens scenario and bench/assertion-path.ts). */
export const b64u = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

/**
 * A self-signed certificate to register and its private key: RSA-2048 for PS256 (as
 * `openssl req -x509 -newkey rsa:2048` makes one for @azure/identity), P-256 for ES256.
 */
export async function assertionCertificate(
  cn: string,
  alg: AssertionAlg = 'PS256',
): Promise<AssertionCertificate> {
  const params =
    alg === 'PS256'
      ? ({
          name: 'RSASSA-PKCS1-v1_5',
          modulusLength: 2048,
          publicExponent: new Uint8Array([1, 0, 1]),
          hash: 'SHA-256',
        } as const)
      : ({ name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const);
  const keys = (await webcrypto.subtle.generateKey(params, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${cn}`,
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: new Date(Date.now() + 7 * 86_400_000),
    signingAlgorithm: params,
    keys,
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return {
    alg,
    pem: cert.toString('pem'),
    key: createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }),
    x5tS256: createHash('sha256').update(Buffer.from(cert.rawData)).digest('base64url'),
  };
}

/**
 * A client_credentials form body per call, authenticated by a fresh client assertion (a new `jti`
 * each, valid 10 minutes) signed with `cert`'s key: PS256 as msal-node signs it (RSASSA-PSS,
 * SHA-256, salt of the digest's length), or ES256 (r‖s).
 */
export function assertionBodies(
  cert: Pick<AssertionCertificate, 'alg' | 'key' | 'x5tS256'>,
  appId: string,
  tokenUrl: string,
  scope: string,
): () => string {
  const ah = b64u({ alg: cert.alg, typ: 'JWT', 'x5t#S256': cert.x5tS256 });
  const options =
    cert.alg === 'PS256'
      ? {
          key: cert.key,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
        }
      : { key: cert.key, dsaEncoding: 'ieee-p1363' as const };
  return () => {
    const now = Math.floor(Date.now() / 1000);
    const input = `${ah}.${b64u({ aud: tokenUrl, iss: appId, sub: appId, iat: now, nbf: now, exp: now + 600, jti: randomUUID() })}`;
    const sig = sign('sha256', Buffer.from(input), options);
    return new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: appId,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: `${input}.${sig.toString('base64url')}`,
      scope,
    }).toString();
  };
}

/** A signer process's work: `count` bodies. */
function signerMain(input: SignerInput): string[] {
  const key = createPrivateKey(input.pkcs8Pem);
  const next = assertionBodies(
    { alg: input.alg, key, x5tS256: input.x5tS256 },
    input.appId,
    input.tokenUrl,
    input.scope,
  );
  return Array.from({ length: input.count }, next);
}

/**
 * `count` bodies of `assertionBodies`, signed ahead in one child process per core (this file, run
 * with `--assertion-signer`; a worker thread would not get the TypeScript loader on Node 20), and a
 * `nextBody` that hands them out one per request. Should the load outrun them, the rest are signed
 * on the spot (slower: the load generator then limits the run); `shortfall()` tells how many were,
 * so that the caller can say so.
 */
export async function presignedAssertionBodies(
  cert: AssertionCertificate,
  appId: string,
  tokenUrl: string,
  scope: string,
  count: number,
): Promise<{ nextBody: () => string; shortfall: () => number }> {
  const processes = Math.max(1, availableParallelism());
  const pkcs8Pem = cert.key.export({ type: 'pkcs8', format: 'pem' }).toString();
  const share = Math.ceil(count / processes);
  const parts = await Promise.all(
    Array.from(
      { length: processes },
      () =>
        new Promise<string[]>((resolve, reject) => {
          const input: SignerInput = {
            alg: cert.alg,
            pkcs8Pem,
            x5tS256: cert.x5tS256,
            appId,
            tokenUrl,
            scope,
            count: share,
          };
          const child = fork(fileURLToPath(import.meta.url), ['--assertion-signer'], {
            execArgv: ['--import', 'tsx'],
            stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          });
          let bodies: string[] | undefined;
          child.once('message', (m) => {
            bodies = m as string[];
            child.disconnect();
          });
          child.once('error', reject);
          child.once('exit', (code) =>
            bodies && code === 0
              ? resolve(bodies)
              : reject(new Error(`assertion signer exited with ${code}`)),
          );
          child.send(input);
        }),
    ),
  );
  const ready = parts.flat();
  const onTheSpot = assertionBodies(cert, appId, tokenUrl, scope);
  let missing = 0;
  return {
    nextBody: () => {
      const body = ready.pop();
      if (body !== undefined) return body;
      missing++;
      return onTheSpot();
    },
    shortfall: () => missing,
  };
}

// Run as a signer process (presignedAssertionBodies): one message in, the bodies out.
if (process.argv.includes('--assertion-signer') && process.send) {
  process.once('message', (input) => process.send!(signerMain(input as SignerInput)));
}
