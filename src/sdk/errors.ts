/** A source of credentials is not there (no environment variables, no endpoint, no CLI login): the chain goes on. */
export class CredentialUnavailableError extends Error {
  override name = 'CredentialUnavailableError';
}

/** A source is there but refused (wrong secret, identity not found): the chain stops here. */
export class AuthenticationError extends Error {
  override name = 'AuthenticationError';
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** What each source of a chain said, in order. */
export interface SourceAttempt {
  source: string;
  message: string;
}

/** No source produced a token: the message lists each source and what it said. */
export class AggregateCredentialError extends Error {
  override name = 'AggregateCredentialError';
  constructor(readonly attempts: readonly SourceAttempt[]) {
    super(
      `DefaultLatchkeyCredential could not get a token:\n${attempts.map((a) => `- ${a.source}: ${a.message}`).join('\n')}`,
    );
  }
}

/** The message of an OAuth or managed-identity error body (never the request's secrets). */
export function describeBody(status: number, body: unknown): string {
  if (body && typeof body === 'object') {
    const b = body as { error?: unknown; error_description?: unknown };
    if (typeof b.error === 'string')
      return `${b.error}: ${String(b.error_description ?? '').replace(/ Trace ID:.*$/s, '')}`.trim();
    if (b.error && typeof b.error === 'object') {
      const e = b.error as { code?: unknown; message?: unknown };
      return `${String(e.code)}: ${String(e.message)}`;
    }
  }
  return `HTTP ${status}`;
}
