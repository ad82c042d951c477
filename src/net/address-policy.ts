/**
 * Which network addresses the worker may connect to on a user's behalf (URL sources, webhooks).
 *
 * Why it exists: an upload request names a URL, and the worker — inside the deployment's network,
 * next to cloud metadata endpoints, databases and admin ports — fetches it. Without a rule, a
 * request could make the worker read `http://169.254.169.254/…` or an internal service and copy
 * the answer into a bucket the requester can read (server-side request forgery). So only public
 * unicast addresses are allowed by default, and everything else — loopback, RFC 1918 private,
 * link-local (incl. the metadata endpoint), carrier-grade NAT, unique-local IPv6, multicast,
 * unspecified, reserved and documentation ranges, and IPv4-mapped IPv6 forms of those — needs an
 * explicit entry in an allow-list.
 *
 * Why it is built this way: the classification is ipaddr.js's `range()` (a well-kept table of
 * special-purpose ranges) with one rule on top: anything that is not `unicast` is refused. The
 * decision is made on the *address the socket connects to* (see guarded-fetch.ts), never on the
 * URL text alone, so neither DNS names, nor redirects, nor DNS rebinding get around it.
 */
import ipaddr from 'ipaddr.js';

/** One allow-list entry: an address range, or a host name trusted whatever it resolves to; optionally one port only. */
export type AllowedHostEntry =
  | { kind: 'range'; text: string; range: [ipaddr.IPv4 | ipaddr.IPv6, number]; port?: number }
  | { kind: 'name'; text: string; name: string; port?: number };

/** What {@link OutboundPolicy} is told about itself, for messages. */
export interface OutboundPolicyOptions {
  /**
   * Non-public destinations allowed anyway: IPs (`127.0.0.1`, `::1`), CIDR ranges (`10.0.0.0/8`,
   * `fd00::/8`) or host names (`files.internal`), each optionally with `:port` (`127.0.0.1:8080`,
   * `[::1]:8080`, `files.internal:8443`; not on CIDR ranges). A host name entry trusts whatever the
   * name resolves to. @default [] (public addresses only)
   */
  allowedHosts?: readonly string[];
  /** Who connects, for messages, e.g. "URL sources". */
  subject: string;
  /** The configuration variable that holds the allow-list, for messages. */
  variable: string;
}

/** Why an address was refused: its range in words. */
const RANGE_WORDS: Record<string, string> = {
  unspecified: 'an unspecified',
  broadcast: 'a broadcast',
  multicast: 'a multicast',
  linkLocal: 'a link-local (e.g. cloud metadata)',
  loopback: 'a loopback',
  carrierGradeNat: 'a carrier-grade NAT',
  private: 'a private (RFC 1918)',
  uniqueLocal: 'a unique-local (fc00::/7)',
  reserved: 'a reserved',
};

/** The address with IPv4-mapped IPv6 (`::ffff:127.0.0.1`) unwrapped, or undefined if it is not an IP. */
export function parseAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (!ipaddr.isValid(bare)) return undefined;
  // ipaddr.js also accepts "127.1" and octal/hex forms; only canonical dotted quads and IPv6 count as addresses here.
  if (!bare.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(bare)) return undefined;
  return ipaddr.process(bare);
}

/** The special-purpose range an address is in (`loopback`, `private`, …), or `unicast` for a public address. */
export function addressRange(address: ipaddr.IPv4 | ipaddr.IPv6): string {
  return address.range();
}

/** Splits `host[:port]` / `[v6][:port]` / `v6`; undefined port when none is given. */
function splitHostPort(text: string): { host: string; port?: number } | undefined {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text);
  if (bracketed) return { host: bracketed[1]!, ...(bracketed[2] ? { port: Number(bracketed[2]) } : {}) };
  if ((text.match(/:/g) ?? []).length > 1) return { host: text }; // bare IPv6
  const [host, port, ...rest] = text.split(':');
  if (rest.length || !host) return undefined;
  if (port === undefined) return { host };
  if (!/^\d{1,5}$/.test(port)) return undefined;
  return { host, port: Number(port) };
}

const HOST_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/**
 * Parses a comma-separated allow-list (the form of `UPLOAD_SAGA_URL_ALLOWED_HOSTS`).
 * @returns the entries, and a problem per entry that is not an IP, CIDR range or host name
 */
export function parseAllowedHosts(text: string | readonly string[] | undefined): { entries: AllowedHostEntry[]; problems: string[] } {
  const items = (typeof text === 'string' ? text.split(',') : (text ?? [])).map((s) => s.trim()).filter(Boolean);
  const entries: AllowedHostEntry[] = [];
  const problems: string[] = [];
  for (const item of items) {
    const invalid = () => problems.push(`"${item}" is not an IP address, CIDR range (10.0.0.0/8) or host name, optionally with :port`);
    if (item.includes('/')) {
      if (!ipaddr.isValidCIDR(item)) {
        invalid();
        continue;
      }
      const [base, bits] = ipaddr.parseCIDR(item);
      // A range of IPv4-mapped IPv6 addresses means the IPv4 range (addresses are unwrapped before matching).
      const range: [ipaddr.IPv4 | ipaddr.IPv6, number] =
        base.kind() === 'ipv6' && (base as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96
          ? [(base as ipaddr.IPv6).toIPv4Address(), bits - 96]
          : [base, bits];
      entries.push({ kind: 'range', text: item, range });
      continue;
    }
    const split = splitHostPort(item);
    if (!split || (split.port !== undefined && (split.port < 1 || split.port > 65535))) {
      invalid();
      continue;
    }
    const address = parseAddress(split.host);
    if (address) {
      entries.push({
        kind: 'range',
        text: item,
        range: [address, address.kind() === 'ipv4' ? 32 : 128],
        ...(split.port !== undefined ? { port: split.port } : {}),
      });
    } else if (HOST_NAME.test(split.host) && !/^[\d.]+$/.test(split.host)) {
      entries.push({
        kind: 'name',
        text: item,
        name: split.host.toLowerCase().replace(/\.$/, ''),
        ...(split.port !== undefined ? { port: split.port } : {}),
      });
    } else {
      invalid();
    }
  }
  return { entries, problems };
}

/** Thrown (and passed through sockets) when a destination is refused; `message` says which address and how to allow it. */
export class AddressNotAllowedError extends Error {
  override readonly name = 'AddressNotAllowedError';
  constructor(
    message: string,
    /** The host name the connection was for (an IP for IP URLs). */
    readonly hostname: string,
    /** The refused address. */
    readonly address: string,
  ) {
    super(message);
  }
}

/** The decision for one connection: a public address, an allow-list entry, or a refusal. */
export class OutboundPolicy {
  private readonly entries: AllowedHostEntry[];

  /** @throws TypeError when an allow-list entry is malformed (configuration validates them first). */
  constructor(private readonly options: OutboundPolicyOptions) {
    const { entries, problems } = parseAllowedHosts(options.allowedHosts);
    if (problems.length) throw new TypeError(`${options.variable}: ${problems.join('; ')}`);
    this.entries = entries;
  }

  /** Whether a host name entry trusts this host (then its addresses are not checked). */
  trustsName(hostname: string, port: number): boolean {
    const name = hostname.toLowerCase().replace(/\.$/, '');
    return this.entries.some((e) => e.kind === 'name' && e.name === name && (e.port === undefined || e.port === port));
  }

  /**
   * Checks the address a connection to `hostname:port` is about to use.
   * @returns undefined when allowed, otherwise the error to fail the connection with
   */
  check(hostname: string, port: number, addressText: string): AddressNotAllowedError | undefined {
    if (this.trustsName(hostname, port)) return undefined;
    const address = parseAddress(addressText);
    if (!address)
      return new AddressNotAllowedError(`${hostname} resolved to "${addressText}", which is not an IP address`, hostname, addressText);
    const range = addressRange(address);
    if (range === 'unicast') return undefined;
    const allowed = this.entries.some(
      (e) =>
        e.kind === 'range' && e.range[0].kind() === address.kind() && address.match(e.range) && (e.port === undefined || e.port === port),
    );
    if (allowed) return undefined;
    const shown = address.toString();
    const what = `${RANGE_WORDS[range] ?? `a special-purpose (${range})`} address`;
    const bare = hostname.replace(/^\[|\]$/g, '');
    const subjectOf =
      bare === shown || parseAddress(bare)?.toString() === shown ? `${shown} is ${what}` : `${hostname} resolves to ${shown}, ${what}`;
    const entry = address.kind() === 'ipv6' ? `[${shown}]:${port}` : `${shown}:${port}`;
    return new AddressNotAllowedError(
      `${subjectOf}, and ${this.options.subject} may reach only public addresses; to allow it, add ${entry} (or ${shown}, or a range such as ${suggestedRange(address)}) to ${this.options.variable}`,
      hostname,
      shown,
    );
  }
}

function suggestedRange(address: ipaddr.IPv4 | ipaddr.IPv6): string {
  if (address.kind() === 'ipv6') return `${address.toString()}/128`;
  const [a] = (address as ipaddr.IPv4).octets;
  switch (address.range()) {
    case 'loopback':
      return '127.0.0.0/8';
    case 'private':
      return a === 10 ? '10.0.0.0/8' : a === 172 ? '172.16.0.0/12' : '192.168.0.0/16';
    case 'linkLocal':
      return '169.254.0.0/16';
    case 'carrierGradeNat':
      return '100.64.0.0/10';
    default:
      return `${address.toString()}/32`;
  }
}
