import { BlockList, isIP } from 'node:net';

/** `::ffff:10.0.0.5` (an IPv4 client on a dual-stack socket) → `10.0.0.5`; anything else unchanged. */
export const normalizeIp = (ip: string): string =>
  ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;

/**
 * Adds `10.0.0.0/8`, `2001:db8::/32` or a single address to `list`.
 * Throws a RangeError naming the bad entry (at most 64 characters of it).
 */
export function addCidr(list: BlockList, cidr: string): void {
  const [addr, bits, extra] = cidr.split('/');
  const family = isIP(addr ?? '');
  if (!family || extra !== undefined) throw new RangeError(`'${cidr.slice(0, 64)}' is not a CIDR range.`);
  const prefix = bits === undefined ? (family === 4 ? 32 : 128) : /^\d{1,3}$/.test(bits) ? Number(bits) : -1;
  if (prefix < 0 || prefix > (family === 4 ? 32 : 128))
    throw new RangeError(`'${cidr.slice(0, 64)}' has an invalid prefix length.`);
  list.addSubnet(addr!, prefix, family === 4 ? 'ipv4' : 'ipv6');
}

/** A BlockList of the given ranges (RangeError on the first bad one). */
export function cidrList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) addCidr(list, c);
  return list;
}

/** Whether `ip` (normalized) is an address in `list`; false for anything that is not an address. */
export function inCidrList(list: BlockList, ip: string): boolean {
  const a = normalizeIp(ip);
  const family = isIP(a);
  return family !== 0 && list.check(a, family === 4 ? 'ipv4' : 'ipv6');
}
