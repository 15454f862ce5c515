// Slows down guessing the dashboard token: per client address, the first few wrong tokens cost
// nothing (a typo, a stale cookie after rotation), then every further one closes the door for a
// doubling time (1 s, 2 s, 4 s … at most a minute). A request arriving while the door is closed
// is answered 429 without its token being checked, so it teaches the guesser nothing — and it
// is answered at once: holding the socket open instead would let a guesser tie up the server.
//
// The right token does not wipe an address's failures: behind a shared address (NAT, a proxy)
// the owner's page polling the API would otherwise reset a guesser's count every few seconds.
// Failures are forgotten FORGET_AFTER_MS after the last one.
//
// Memory is bounded: at most MAX_CLIENTS addresses are remembered (the least recently failed is
// forgotten first), and an address that stops failing is forgotten after FORGET_AFTER_MS.
// IPv6 clients are counted per /64, the block a single host is usually given: counting each
// address would let one host guess from 2^64 of them.
//
// Behind a reverse proxy every client has the proxy's address: one guesser then slows everyone
// down. That is the price of not trusting X-Forwarded-For, which any client can write.

/** Wrong tokens an address may send before it is slowed down. */
export const FREE_FAILURES = 5;
const FIRST_DELAY_MS = 1_000;
const MAX_DELAY_MS = 60_000;
const FORGET_AFTER_MS = 15 * 60_000;
const MAX_CLIENTS = 10_000;

interface Failures {
  count: number;
  last: number;
  blockedUntil: number;
}

export class LoginThrottle {
  /** In order of last failure, oldest first (a Map keeps insertion order; entries are re-inserted). */
  private readonly clients = new Map<string, Failures>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Milliseconds this address must still wait before its token is checked again; 0: go ahead. */
  waitFor(address: string | undefined): number {
    const entry = this.clients.get(clientKey(address));
    if (!entry) return 0;
    return Math.max(0, entry.blockedUntil - this.now());
  }

  /** A wrong token from this address. */
  failed(address: string | undefined): void {
    const key = clientKey(address);
    const now = this.now();
    const previous = this.clients.get(key);
    const count = previous && now - previous.last < FORGET_AFTER_MS ? previous.count + 1 : 1;
    const delay = count < FREE_FAILURES ? 0 : Math.min(FIRST_DELAY_MS * 2 ** (count - FREE_FAILURES), MAX_DELAY_MS);
    this.clients.delete(key);
    this.clients.set(key, { count, last: now, blockedUntil: now + delay });
    this.evict(now);
  }

  /** Addresses remembered (for tests of the bound). */
  get size(): number {
    return this.clients.size;
  }

  private evict(now: number): void {
    for (const [key, entry] of this.clients) {
      if (this.clients.size <= MAX_CLIENTS && now - entry.last < FORGET_AFTER_MS) break;
      this.clients.delete(key);
    }
  }
}

/** The address a client is counted under: IPv4 as is, IPv6 by its /64. */
export function clientKey(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  const [head = '', tail] = address.split('%')[0]!.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
