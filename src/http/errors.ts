import { randomUUID } from 'node:crypto';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorCode, LatchkeyError } from '../errors/index.js';
import { isConcurrentWriteConflict } from '../storage/errors.js';

/** Maps anything thrown to a LatchkeyError; unexpected errors become a bare 500 (logged, never shown). */
export function toLatchkeyError(err: unknown, req: FastifyRequest, oauth = false): LatchkeyError {
  // A unique-constraint race between two concurrent creates (the storage adapters make it a Conflict):
  // on the authority's paths it keeps the OAuth shape it always had.
  if (oauth && isConcurrentWriteConflict(err))
    return new LatchkeyError('invalid_request', 'The request conflicts with a concurrent change; retry.', {
      status: 409,
    });
  if (err instanceof LatchkeyError) return err;
  const e = err as Partial<FastifyError> & { statusCode?: number };
  const code: ErrorCode | undefined =
    e.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
      ? 'PayloadTooLarge'
      : e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
        ? 'UnsupportedMediaType'
        : e.validation || (e.statusCode && e.statusCode >= 400 && e.statusCode < 500)
          ? 'BadParameter'
          : undefined;
  if (code) {
    const message =
      code === 'PayloadTooLarge'
        ? 'The request body is too large.'
        : code === 'UnsupportedMediaType'
          ? 'The request content type is not supported.'
          : e.code?.startsWith('FST_ERR_CTP') || e instanceof SyntaxError
            ? 'The request body is not valid.'
            : 'The request is not valid.';
    if (oauth)
      return new LatchkeyError('invalid_request', message, {
        status: e.statusCode ?? 400,
        aadCodes: [900144],
      });
    return new LatchkeyError(code, message, { status: e.statusCode ?? 400 });
  }
  req.log.error({ err }, 'unhandled error');
  return new LatchkeyError(oauth ? 'server_error' : 'InternalError', 'An internal error occurred.', {
    cause: err,
  });
}

/** Paths of the authority's protocol family, whose errors are OAuth-shaped even when no route matched. */
export const isOAuthPath = (url: string): boolean => /\/oauth2\/|\/discovery\/|\/\.well-known\//i.test(url);

/** `{"error":{"code","message"}}` — the Key Vault and ARM shape. */
export function sendAzureError(err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const e = toLatchkeyError(err, req);
  for (const [k, v] of Object.entries(e.headers)) reply.header(k, v);
  return reply
    .code(e.status)
    .type('application/json; charset=utf-8')
    .send({
      error: { code: e.code, message: e.message, ...(e.inner ? { innererror: { code: e.inner } } : {}) },
    });
}

/** RFC 6749 §5.2 with Entra's extra fields. */
export function sendOAuthError(err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const e = toLatchkeyError(err, req, true);
  for (const [k, v] of Object.entries(e.headers)) reply.header(k, v);
  const trace = String(req.id);
  const correlation = (req.headers['client-request-id'] as string | undefined) ?? randomUUID();
  const isOAuth = /^[a-z_]+$/.test(e.code);
  const codes = e.aadCodes.length ? e.aadCodes : [];
  const prefix = codes.length ? `AADSTS${codes[0]}: ` : '';
  return reply
    .code(e.status)
    .header('cache-control', 'no-store')
    .type('application/json; charset=utf-8')
    .send({
      error: isOAuth
        ? e.code
        : e.status === 503
          ? 'temporarily_unavailable'
          : e.status >= 500
            ? 'server_error'
            : 'invalid_request',
      error_description: `${prefix}${e.message} Trace ID: ${trace} Correlation ID: ${correlation} Timestamp: ${new Date().toISOString().replace('T', ' ').slice(0, 19)}Z`,
      error_codes: codes,
      timestamp: new Date().toISOString().replace('T', ' ').slice(0, 19) + 'Z',
      trace_id: trace,
      correlation_id: correlation,
    });
}
