import { describe, expect, it } from 'vitest';
import { clientKey, FREE_FAILURES, LoginThrottle } from '../../scaler/dashboard/login-throttle.js';

describe('LoginThrottle', () => {
  it('lets the first wrong tokens through, then doubles the wait up to a minute', () => {
    let now = 1_000_000;
    const throttle = new LoginThrottle(() => now);
    for (let i = 1; i < FREE_FAILURES; i++) {
      throttle.failed('10.0.0.1');
      expect(throttle.waitFor('10.0.0.1')).toBe(0);
    }
    const waits: number[] = [];
    for (let i = 0; i < 9; i++) {
      throttle.failed('10.0.0.1');
      waits.push(throttle.waitFor('10.0.0.1'));
      now += waits.at(-1)!;
    }
    expect(waits).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
    // Another address is not slowed down by it.
    expect(throttle.waitFor('10.0.0.2')).toBe(0);
  });

  it('forgets an address a quarter of an hour after its last failure', () => {
    let now = 0;
    const throttle = new LoginThrottle(() => now);
    for (let i = 0; i < FREE_FAILURES; i++) throttle.failed('10.0.0.1');
    expect(throttle.waitFor('10.0.0.1')).toBe(1_000);
    now += 15 * 60_000;
    throttle.failed('10.0.0.1');
    expect(throttle.waitFor('10.0.0.1')).toBe(0);
  });

  it('remembers a bounded number of addresses, dropping the least recently failed', () => {
    const throttle = new LoginThrottle(() => 0);
    for (let i = 0; i < 10_050; i++) throttle.failed(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    expect(throttle.size).toBe(10_000);
  });
});

describe('clientKey', () => {
  it('counts IPv4 as is, IPv4-mapped IPv6 as IPv4, and IPv6 by its /64', () => {
    expect(clientKey('192.0.2.7')).toBe('192.0.2.7');
    expect(clientKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientKey(undefined)).toBe('unknown');
  });
});
