import type { IncomingMessage } from 'node:http';
import type https from 'node:https';
import { type BlockList, isIP, type Socket } from 'node:net';
import type { ProxySettings } from '../config/index.js';
import { cidrList, inCidrList, normalizeIp } from '../lib/ip.js';

/**
 * The client's address behind a load balancer or reverse proxy.
 *
 * Behind a balancer every connection comes from the balancer, so the audit
 * log, the per-address limits, the authentication throttle and provisioning
 * keys' address ranges would all see one address. A node told which peers are
 * its proxies (`--trusted-proxy`) takes the client's address from them, and
 * only from them:
 *
 * - `proxy-protocol` (TLS passthrough: the balancer cannot add headers to
 *   encrypted traffic): every connection from a trusted proxy must begin with
 *   a PROXY protocol header, version 1 (text) or 2 (binary), as HAProxy's
 *   `send-proxy`/`send-proxy-v2` and nginx's `proxy_protocol on` send it. A
 *   connection from a trusted proxy without a valid header within 5 s is
 *   closed. `LOCAL` (v2) and `UNKNOWN` (v1) headers, which balancers send for
 *   their own health checks, leave the proxy's address.
 * - `x-forwarded-for` (the balancer terminates TLS and re-encrypts): the
 *   `X-Forwarded-For` header of a request from a trusted proxy is read from
 *   the right; the first address that is not itself a trusted proxy is the
 *   client. An entry that is not an address stops the walk.
 *
 * Connections from any other peer are taken as they are: their headers are
 * never believed.
 */

/** v2 signature: `\r\n\r\n\0\r\nQUIT\n`. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** v1: "the maximum line length is 107 bytes including the CRLF". */
const V1_MAX = 107;
/** v2: the address block plus TLVs; balancers send well under this. */
const V2_MAX_PAYLOAD = 2048;
const HEADER_TIMEOUT_MS = 5_000;

export type ProxyHeaderResult =
  | { status: 'incomplete' }
  | { status: 'invalid'; reason: string }
  /** `address` null: a LOCAL or UNKNOWN header (the proxy speaks for itself). */
  | { status: 'ok'; length: number; address: string | null };

/** Whether `buf` so far agrees with the start of `prefix`. */
const startsLike = (buf: Buffer, prefix: Buffer) =>
  buf.subarray(0, prefix.length).equals(prefix.subarray(0, Math.min(buf.length, prefix.length)));

const port = (s: string | undefined) => s !== undefined && /^\d{1,5}$/.test(s) && Number(s) <= 65535;

/** Parses the PROXY protocol header at the start of `buf` (v1 or v2, spec of haproxy.org, 2020). */
export function parseProxyHeader(buf: Buffer): ProxyHeaderResult {
  if (buf.length === 0) return { status: 'incomplete' };
  if (startsLike(buf, V2_SIGNATURE)) {
    if (buf.length < 16) return { status: 'incomplete' };
    const verCmd = buf[12]!;
    if (verCmd >> 4 !== 2) return { status: 'invalid', reason: 'unsupported PROXY protocol version' };
    const cmd = verCmd & 0x0f;
    if (cmd > 1) return { status: 'invalid', reason: 'unknown PROXY protocol v2 command' };
    const len = buf.readUInt16BE(14);
    if (len > V2_MAX_PAYLOAD) return { status: 'invalid', reason: 'PROXY protocol v2 header too long' };
    if (buf.length < 16 + len) return { status: 'incomplete' };
    const length = 16 + len;
    if (cmd === 0) return { status: 'ok', length, address: null }; // LOCAL
    const family = buf[13]! >> 4;
    if (family === 1) {
      if (len < 12) return { status: 'invalid', reason: 'PROXY protocol v2 IPv4 block too short' };
      return { status: 'ok', length, address: Array.from(buf.subarray(16, 20)).join('.') };
    }
    if (family === 2) {
      if (len < 36) return { status: 'invalid', reason: 'PROXY protocol v2 IPv6 block too short' };
      const groups: string[] = [];
      for (let i = 0; i < 16; i += 2) groups.push(buf.readUInt16BE(16 + i).toString(16));
      // The URL parser writes the canonical (compressed) form.
      const address = normalizeIp(new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1));
      return { status: 'ok', length, address };
    }
    return { status: 'ok', length, address: null }; // AF_UNSPEC, AF_UNIX: no IP to take
  }
  if (startsLike(buf, V1_PREFIX)) {
    const end = buf.indexOf('\r\n', 0, 'latin1');
    if (end === -1) {
      return buf.length >= V1_MAX
        ? { status: 'invalid', reason: 'PROXY protocol v1 line too long' }
        : { status: 'incomplete' };
    }
    const length = end + 2;
    if (length > V1_MAX) return { status: 'invalid', reason: 'PROXY protocol v1 line too long' };
    const parts = buf.subarray(0, end).toString('latin1').split(' ');
    if (parts[1] === 'UNKNOWN') return { status: 'ok', length, address: null };
    const [, proto, src, dst, sport, dport] = parts;
    const family = proto === 'TCP4' ? 4 : proto === 'TCP6' ? 6 : 0;
    if (
      parts.length !== 6 ||
      family === 0 ||
      isIP(src ?? '') !== family ||
      isIP(dst ?? '') !== family ||
      !port(sport) ||
      !port(dport)
    )
      return { status: 'invalid', reason: 'malformed PROXY protocol v1 line' };
    return { status: 'ok', length, address: normalizeIp(src!) };
  }
  return { status: 'invalid', reason: 'the connection did not begin with a PROXY protocol header' };
}

/** The client behind a chain of trusted proxies, from `X-Forwarded-For` (read right to left). */
export function forwardedClient(
  peer: string,
  header: string | string[] | undefined,
  trusted: BlockList,
): string {
  if (header === undefined || !inCidrList(trusted, peer)) return peer;
  // At most the 32 rightmost hops are considered (a header is bounded by maxHeaderSize anyway).
  const hops = (Array.isArray(header) ? header.join(',') : header).split(',').slice(-32);
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeIp(hops[i]!.trim());
    if (isIP(hop) === 0) break;
    client = hop;
    if (!inCidrList(trusted, hop)) break;
  }
  return client;
}

const addresses = new WeakMap<IncomingMessage, string>();

/** The client's address of a request: as resolved by the listener, else the socket's peer. */
export function clientAddressOf(req: IncomingMessage): string {
  return addresses.get(req) ?? normalizeIp(req.socket.remoteAddress ?? 'unknown');
}

/**
 * Resolves client addresses for one HTTPS listener. `install` makes the
 * server read PROXY protocol headers (when configured); `resolve` records the
 * address of each request for {@link clientAddressOf}.
 */
export function createClientAddresses(
  settings: ProxySettings,
  log: { warn: (obj: object, msg: string) => void },
) {
  const trusted = cidrList(settings.trusted);
  /** Proxied client by the proxy's side of the connection (`address|port`): unique while it is open. */
  const proxied = new Map<string, string>();
  const connectionKey = (s: { remoteAddress?: string | undefined; remotePort?: number | undefined }) =>
    `${s.remoteAddress}|${s.remotePort}`;

  return {
    install(server: https.Server): void {
      if (settings.via !== 'proxy-protocol') return;
      const listeners = server.listeners('connection');
      // node:tls's own listener wraps each connection in TLS; ours runs first and hands it over.
      if (listeners.length !== 1)
        throw new Error(`the HTTPS server has ${listeners.length} connection listeners; expected 1`);
      const startTls = listeners[0] as (socket: Socket) => void;
      server.removeAllListeners('connection');
      server.on('connection', (socket: Socket) => {
        if (!inCidrList(trusted, socket.remoteAddress ?? '')) {
          startTls.call(server, socket);
          return;
        }
        let buf: Buffer = Buffer.alloc(0);
        const timer = setTimeout(() => socket.destroy(), HEADER_TIMEOUT_MS);
        const onError = () => socket.destroy();
        const onData = (chunk: Buffer) => {
          buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
          const r = parseProxyHeader(buf);
          if (r.status === 'incomplete') return;
          clearTimeout(timer);
          socket.off('data', onData);
          if (r.status === 'invalid') {
            log.warn(
              { peer: socket.remoteAddress, reason: r.reason },
              'closing a connection from a trusted proxy',
            );
            socket.destroy();
            return;
          }
          socket.pause();
          socket.off('error', onError);
          const rest = buf.subarray(r.length);
          if (rest.length > 0) socket.unshift(rest);
          if (r.address !== null) {
            const key = connectionKey(socket);
            proxied.set(key, r.address);
            socket.once('close', () => proxied.delete(key));
          }
          startTls.call(server, socket);
        };
        socket.on('error', onError);
        socket.once('close', () => clearTimeout(timer));
        socket.on('data', onData);
      });
    },

    /** Records the client's address of `req` (call before handing the request on). */
    resolve(req: IncomingMessage): void {
      const peer = normalizeIp(req.socket.remoteAddress ?? 'unknown');
      const address =
        settings.via === 'proxy-protocol'
          ? (proxied.get(connectionKey(req.socket)) ?? peer)
          : forwardedClient(peer, req.headers['x-forwarded-for'], trusted);
      addresses.set(req, address);
    },
  };
}
