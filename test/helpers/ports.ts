// A free loopback port: in bench/support/ports.ts, next to the containers that need one (the
// reliability bench starts those too); tests import it from here.
import { createServer } from 'node:net';

export * from '../../bench/support/ports.js';

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * The first of `count` consecutive free loopback ports: for a process that derives ports from the
 * one it is given (a scaler's runners serve metrics on the ports after its own). Picked below
 * Linux's ephemeral range (32768 and up), where connections' own ports would collide with it.
 */
export async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = 20_000 + Math.floor(Math.random() * (12_000 - count));
    let free = true;
    for (let port = first; free && port < first + count; port++) free = await portFree(port);
    if (free) return first;
  }
  throw new Error(`no ${count} consecutive free ports found between 20000 and 32000`);
}
