import { isIPv4, isIPv6 } from 'node:net';

/**
 * Zeroes the host part of an address so it no longer identifies a person:
 * the last octet of IPv4, the last 80 bits of IPv6 (keeping the /48 routing
 * prefix). IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is treated as IPv4. Anything
 * that is not an IP becomes null.
 */
export function anonymizeIp(ip: string | null): string | null {
  if (!ip) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const v4 = mapped ? mapped[1] : ip;
  if (isIPv4(v4)) return v4.replace(/\.\d+$/, '.0');
  if (!isIPv6(ip)) return null;
  const groups = expandIpv6(ip);
  return compressIpv6([...groups.slice(0, 3), 0, 0, 0, 0, 0]);
}

function expandIpv6(ip: string): number[] {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const parse = (part: string | undefined) =>
    part ? part.split(':').map((group) => parseInt(group, 16)) : [];
  const left = parse(head);
  const right = parse(tail);
  const zeros = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array<number>(zeros).fill(0), ...right];
}

function compressIpv6(groups: number[]): string {
  // groups[3..7] are zero: write the prefix and let "::" stand for the rest.
  const prefix = groups.slice(0, 3);
  while (prefix.length > 0 && prefix[prefix.length - 1] === 0) prefix.pop();
  return `${prefix.map((g) => g.toString(16)).join(':')}::`;
}
