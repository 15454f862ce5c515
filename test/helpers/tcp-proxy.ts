// A TCP proxy a test can cut: clients connect through it to a real service; `down()` drops every
// connection and refuses new ones (a service gone: ECONNREFUSED), `up()` accepts again on the
// same port. Faster and more deterministic than restarting a container, for outages whose
// length matters (giving up after a timeout, an idle timer running meanwhile).
//
// `blackhole()` is the other kind of outage, a partition: connections stay open and new ones
// are accepted, but nothing gets through either way and nothing is closed, so a client learns
// of it only by its own timeouts. `heal()` drops what was held and forwards again.
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  down(): Promise<void>;
  up(): Promise<void>;
  blackhole(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const pairs = new Set<[Socket, Socket]>();
  let server: Server | undefined;
  let port = 0;
  let holding = false;

  const track = (socket: Socket, ...peers: Socket[]) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      sockets.delete(socket);
      for (const s of [socket, ...peers]) s.destroy();
    });
  };

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        if (holding) {
          // Accepted, then silence: no upstream, nothing read.
          client.pause();
          track(client);
          return;
        }
        const upstream = connect(target.port, target.host);
        track(client, upstream);
        track(upstream, client);
        const pair: [Socket, Socket] = [client, upstream];
        pairs.add(pair);
        client.once('close', () => pairs.delete(pair));
        client.pipe(upstream);
        upstream.pipe(client);
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        const address = s.address();
        if (typeof address === 'object' && address) port = address.port;
        server = s;
        resolve();
      });
    });

  const down = async () => {
    const s = server;
    server = undefined;
    holding = false;
    for (const socket of sockets) socket.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  const blackhole = () => {
    holding = true;
    for (const [client, upstream] of pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  };

  const heal = () => {
    holding = false;
    // What was held is lost, as after a real partition whose peers gave up: close it.
    for (const socket of sockets) socket.destroy();
  };

  await listen();
  return { port, down, up: listen, blackhole, heal, close: down };
}
