import type http from 'node:http';
import { EndpointError } from './protocols.js';

/** Loopback names and addresses (127.0.0.0/8, ::1, localhost). */
const LOOPBACK_RE = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/i;
export const isLoopback = (host: string): boolean => LOOPBACK_RE.test(host.replace(/^\[|\]$/g, ''));

/** A JSON answer (already serialized), never cached. */
export const sendJsonText = (
  res: http.ServerResponse,
  status: number,
  text: string,
  headers?: Record<string, string>,
) => {
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
};

/** A JSON answer, never cached. */
export const send = (
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) => sendJsonText(res, status, body === undefined ? '' : JSON.stringify(body), headers);

/** The request body as text, refused past `limit` bytes. */
export const readBody = (req: http.IncomingMessage, limit: number): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new EndpointError(413, 'invalid_request', 'The request body is too large.'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
