// What a bench that runs real syncs holds: a TIDEPOOL_PREFIX of its own (queues, Redis keys), a
// confirm channel to publish on, the store, a temp dir, and the processes it started. cleanup()
// removes them all, after a failure or an interrupt too. Benches extend it with their rounds.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type amqp from 'amqplib';
import { loadConfig, type Config } from '../../shared/config.js';
import { createLogger } from '../../shared/logger.js';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import { topologyFor } from '../../shared/broker/topology.js';
import { createRedis } from '../../shared/store/redis.js';
import { createStore, type Store } from '../../shared/store/index.js';
import { cleanUpOnSignal, progress } from './cli.js';
import { deletePrefix } from './services.js';

export class BenchEnv {
  protected readonly prefix = `bench-${randomBytes(4).toString('hex')}`;
  protected readonly config: Config;
  protected readonly logger = createLogger({ level: 'warn', destination: 2 });
  protected readonly redis;
  protected readonly store: Store;
  private broker: amqp.ChannelModel | undefined;
  private confirmChannel: amqp.ConfirmChannel | undefined;
  protected dir = '';
  protected readonly children = new Set<ChildProcess>();

  /** `keep`: leave the temp dir (runner logs, files) for a look afterwards. */
  constructor(private readonly keep: boolean) {
    this.config = loadConfig(process.env, undefined, { prefix: this.prefix, logLevel: 'warn' });
    this.redis = createRedis(this.config.redisUrl, this.logger);
    this.store = createStore(this.redis, this.config);
  }

  protected get channel(): amqp.ConfirmChannel {
    if (!this.confirmChannel) throw new Error('bench: setup() has not run');
    return this.confirmChannel;
  }

  /** The temp dir, the broker connection, and the topology (a sync published before any runner starts is kept). */
  async setup(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), `tidepool-${this.prefix}-`));
    progress(`prefix ${this.prefix}, temp dir ${this.dir}`);
    this.broker = await connectBroker({ url: this.config.amqpUrl, logger: this.logger, timeoutMs: 10_000, connectionName: `tidepool-${this.prefix}` });
    this.confirmChannel = await openConfirmChannel(this.broker, topologyFor(this.prefix), this.logger);
  }

  async cleanup(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL');
    await this.confirmChannel?.close().catch(() => undefined);
    await this.broker?.close().catch(() => undefined);
    try {
      // Every queue the topology declares, its retry levels' delay queues included.
      const deleted = await deletePrefix(this.config);
      progress(`removed ${deleted} Redis keys and the queues of ${this.prefix}`);
    } catch (err) {
      progress(`warning: could not delete the queues and Redis keys of ${this.prefix}: ${(err as Error).message}`);
    }
    await this.redis.quit().catch(() => this.redis.disconnect());
    if (this.dir) {
      if (this.keep) progress(`kept ${this.dir}`);
      else await rm(this.dir, { recursive: true, force: true });
    }
  }

  /**
   * A `bash -c` pipeline (with pipefail) of the connectors piped directly, timed from spawn to
   * the exit of all; the connectors get the environment the local launcher gives them. Throws
   * when it fails or runs past `timeoutMs`. Returns its time in ms.
   */
  protected async runPipeline(script: string, args: string[], o: { cwd: string; label: string; timeoutMs: number; onStdout?: (data: Buffer) => void }): Promise<number> {
    const started = performance.now();
    const child = spawn('bash', ['-c', `set -o pipefail; ${script}`, 'bench', ...args], {
      cwd: o.cwd,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: o.cwd, LANG: process.env.LANG ?? 'C.UTF-8' },
      stdio: ['ignore', o.onStdout ? 'pipe' : 'ignore', 'pipe'],
    });
    this.children.add(child);
    let stderr = '';
    if (o.onStdout) child.stdout?.on('data', o.onStdout);
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-4000)));
    try {
      const code = await new Promise<number | null>((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`${o.label}: direct pipeline still running after ${o.timeoutMs} ms`));
        }, o.timeoutMs);
        child.once('error', reject);
        child.once('close', (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
      if (code !== 0) throw new Error(`${o.label}: direct pipeline exited with code ${String(code)}\n${stderr}`);
      return performance.now() - started;
    } finally {
      this.children.delete(child);
    }
  }
}

/**
 * Sets `bench` up, runs `body`, and cleans up after, also after a failure (printed, exit code 1)
 * or an interrupt (which cleans up itself). Returns the exit code.
 */
export async function runWithBenchEnv<B extends BenchEnv>(bench: B, body: (bench: B) => Promise<void>): Promise<number> {
  const signals = cleanUpOnSignal(() => bench.cleanup());
  try {
    await bench.setup();
    await body(bench);
    return 0;
  } catch (err) {
    process.stderr.write(`bench: FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    if (!signals.interrupted()) await bench.cleanup();
  }
}
