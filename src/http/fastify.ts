import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { FastifyBaseLogger as Logger } from 'fastify';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { Limits } from '../config/index.js';
import { LatchkeyError } from '../errors/index.js';
import { type Clock, systemClock } from '../lib/clock.js';
import { createRateLimiter, jsonDepth } from '../lib/rate-limit.js';
import { clientAddressOf } from './client-address.js';
import { isOAuthPath, sendAzureError, sendOAuthError } from './errors.js';

export type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

type LogArgs = [unknown, ...unknown[]];
type LogMethod = (...args: LogArgs) => void;
type Bindings = Record<string, unknown>;
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
type Level = (typeof LEVELS)[number];

/**
 * A request's logger (`req.log`, `reply.log`), made on first use: Fastify gives every request a
 * pino child bound to its request id, and building one (bindings serialized, a new logger object)
 * cost a few microseconds per request that nearly never logs (per-request lines are off; only
 * errors log). The child, once made, is the one Fastify would have made: same bindings, same options.
 */
// biome-ignore lint/correctness/noUnusedVariables: merged with the class below (its level methods, put on the prototype)
interface LazyRequestLogger extends Record<Level, LogMethod> {}
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: see the interface above
class LazyRequestLogger {
  #real: Logger | undefined;
  readonly #parent: Logger;
  readonly #bindings: Bindings;
  readonly #options: object;
  constructor(parent: Logger, bindings: Bindings, options: object) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }
  /** The real child logger (made now if not yet). */
  get real(): Logger {
    this.#real ??= this.#parent.child(this.#bindings, this.#options);
    return this.#real;
  }
  get level(): string {
    return this.#real ? this.#real.level : this.#parent.level;
  }
  set level(level: string) {
    this.real.level = level;
  }
  child(bindings: Bindings, options?: object): Logger {
    return this.real.child(bindings, options);
  }
}
for (const name of LEVELS)
  LazyRequestLogger.prototype[name] = function (this: LazyRequestLogger, ...args: LogArgs): void {
    (this.real[name] as LogMethod).apply(this.real, args);
  };

/**
 * A Fastify instance that does not listen by itself: it hands back its request
 * handler, so one TLS listener can route by Host to several apps (vault data
 * plane vs authority and management).
 */
export function createFastify(opts: {
  logger: Logger;
  limits: Limits;
  clock?: Clock;
  /**
   * False for an app that only gets requests another app has admitted (the console, which the
   * main app hands its requests to): the main app's per-address bucket already counted them.
   */
  perAddressLimit?: boolean;
}): {
  app: FastifyInstance;
  handler: () => RequestHandler;
} {
  let handler: RequestHandler | undefined;
  const app = Fastify({
    loggerInstance: opts.logger,
    // Per-request lines are off: the audit log records every operation.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.limits.bodyBytes,
    routerOptions: {
      maxParamLength: 300,
      caseSensitive: false,
      ignoreTrailingSlash: true,
      ignoreDuplicateSlashes: false,
    },
    return503OnClosing: true,
    // Router-level rejections (undecodable URL, over-long path parameter) get our error shapes too.
    frameworkErrors: (err, req, reply) =>
      (isOAuthPath(req.url) ? sendOAuthError : sendAzureError)(err, req, reply),
    // Validation is zod's (src/http/validate.ts), serialization JSON.stringify: no route declares a
    // Fastify schema, so Ajv and fast-json-stringify are never loaded (they cost start-up time).
    schemaController: {
      compilersFactory: {
        buildValidator: () => () => {
          throw new Error('Fastify route schemas are not used in Latchkey (validate with zod)');
        },
        buildSerializer: () => () => {
          throw new Error('Fastify response schemas are not used in Latchkey');
        },
      },
    },
    genReqId: () => randomUUID(),
    childLoggerFactory: (logger, bindings, options) =>
      new LazyRequestLogger(logger, bindings, options) as unknown as Logger,
    requestIdHeader: false,
    serverFactory: (h) => {
      handler = h as RequestHandler;
      return http.createServer();
    },
  });
  // JSON bodies: prototype-poisoning safe, bounded depth, an empty body reads as no body.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    parseJson(req, text, (err: Error | null, value: unknown) => {
      if (err) return done(err, undefined);
      if (jsonDepth(value) > opts.limits.jsonDepth) {
        return done(
          new LatchkeyError(
            'BadParameter',
            `The JSON body is nested too deeply (at most ${opts.limits.jsonDepth} levels).`,
          ),
          undefined,
        );
      }
      done(null, value);
    });
  });
  const perAddress =
    opts.perAddressLimit === false
      ? undefined
      : createRateLimiter({
          ratePerSecond: opts.limits.perAddressRate,
          burst: opts.limits.perAddressBurst,
          // The services' clock: a test with a fake clock decides when buckets refill.
          clock: opts.clock ?? systemClock,
        });
  // A callback hook, not an async one: nothing here waits, and an async hook costs every request
  // a promise and a microtask. A refusal by the rate limiter goes to `done` as the async hook's
  // rejection did (the error handler answers it).
  app.addHook('onRequest', (req, reply, done) => {
    try {
      perAddress?.take(clientAddressOf(req.raw));
    } catch (e) {
      done(e as Error);
      return;
    }
    reply.header('x-ms-request-id', req.id);
    const clientRequestId = req.headers['x-ms-client-request-id'];
    if (typeof clientRequestId === 'string' && clientRequestId.length <= 100) {
      reply.header('x-ms-client-request-id', clientRequestId);
    }
    reply.header('x-content-type-options', 'nosniff');
    reply.header('strict-transport-security', 'max-age=31536000');
    done();
  });
  return {
    app,
    handler: () => {
      if (!handler) throw new Error('fastify handler not ready');
      return handler;
    },
  };
}
