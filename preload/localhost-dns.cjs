// Preloaded by `latchkey run` into Node workloads (NODE_OPTIONS=--require=...): `localhost` and
// every `*.localhost` name resolve to the loopback address, as RFC 6761 (section 6.3) asks of name
// resolution libraries, also where the system resolver does not (Debian's glibc without
// nss-myhostname). Vault hosts such as `shop.vault.localhost` then work in any Node client. No
// other name is touched, and no query for a localhost name leaves the machine.
// CommonJS with `--require` so it loads in every Node version, for CommonJS and ESM programs alike.
'use strict';
const dns = require('node:dns');
const { syncBuiltinESMExports } = require('node:module');
const { promisify } = require('node:util');

const isLocalhost = (hostname) => {
  if (typeof hostname !== 'string') return false;
  const h = hostname.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost');
};
/** The answer for a localhost name: 127.0.0.1 first (where servers usually listen), ::1 too for `all`. */
const answer = (options) => {
  const family = typeof options === 'number' ? options : (options?.family ?? 0);
  const v4 = { address: '127.0.0.1', family: 4 };
  const v6 = { address: '::1', family: 6 };
  const list = family === 6 || family === 'IPv6' ? [v6] : family === 4 || family === 'IPv4' ? [v4] : [v4, v6];
  return { all: typeof options === 'object' && options !== null && options.all === true, list };
};

const lookup = dns.lookup;
dns.lookup = function localhostLookup(hostname, ...rest) {
  if (!isLocalhost(hostname)) return lookup.call(this, hostname, ...rest);
  const [options, callback] = rest;
  const cb = typeof options === 'function' ? options : callback;
  const { all, list } = answer(typeof options === 'function' ? undefined : options);
  if (all) process.nextTick(cb, null, list);
  else process.nextTick(cb, null, list[0].address, list[0].family);
  return {};
};
const promisesLookup = dns.promises.lookup;
dns.promises.lookup = function localhostLookup(hostname, ...rest) {
  if (!isLocalhost(hostname)) return promisesLookup.call(this, hostname, ...rest);
  const { all, list } = answer(rest[0]);
  return Promise.resolve(all ? list : list[0]);
};
// `util.promisify(dns.lookup)` resolves to `{address, family}` (or the list), as it does for Node's own.
dns.lookup[promisify.custom] = (hostname, options) => dns.promises.lookup(hostname, options);
// `import { lookup } from 'node:dns'` sees the patched functions too.
syncBuiltinESMExports();
