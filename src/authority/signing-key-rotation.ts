import type { SigningKeys } from './signing-keys.js';

/** The audit entry the rotation writes (the audit log's input, by shape: authority does not import audit). */
export interface SigningKeyRotateEvent {
  tenantId: null;
  callerKind: 'system';
  operation: 'SigningKeyRotate';
  target: string;
  status: 200;
  details: { previous: string; scheduled: true };
}

/**
 * The authority's scheduled signing-key rotation, as a background job: the key is replaced when it
 * reaches `maxAgeSeconds` (the old one stays in JWKS for the overlap) and the rotation is audited.
 * On several nodes one node does it, under the job lock. Checked every 1/20 of the maximum age,
 * between 10 s and 1 h. `undefined` when scheduled rotation is off (`maxAgeSeconds` 0).
 */
export function signingKeyRotationJob(deps: {
  signingKeys: Pick<SigningKeys, 'rotateIfOlderThan'>;
  audit: { record(e: SigningKeyRotateEvent): Promise<void> };
  maxAgeSeconds: number;
}): { name: string; intervalMs: number; run(): Promise<void> } | undefined {
  const maxAgeMs = deps.maxAgeSeconds * 1000;
  if (!(maxAgeMs > 0)) return undefined;
  return {
    name: 'signing-key-rotation',
    intervalMs: Math.min(3_600_000, Math.max(10_000, maxAgeMs / 20)),
    run: async () => {
      const r = await deps.signingKeys.rotateIfOlderThan(maxAgeMs);
      if (r)
        await deps.audit.record({
          tenantId: null,
          callerKind: 'system',
          operation: 'SigningKeyRotate',
          target: r.kid,
          status: 200,
          details: { previous: r.previous, scheduled: true },
        });
    },
  };
}
