import pino, { type Logger } from 'pino';

/**
 * Structured logs on stderr (stdout is kept for machine-readable output).
 * Authorization headers, cookies and anything named like a secret are redacted.
 */
export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { svc: 'latchkey' },
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'req.headers["x-identity-header"]',
          '*.password',
          '*.client_secret',
          '*.value',
          '*.secret',
          '*.token',
          '*.access_token',
        ],
        censor: '[redacted]',
      },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
