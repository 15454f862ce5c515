// The /metrics ports of local runners. Runners on one host cannot share a port, and Prometheus
// has no pod annotations to find them by, so with TIDEPOOL_METRICS_PORT = P the scaler serves on
// P and gives each runner it launches the first free port of P+1 … P+maxRunners: a fixed range
// an operator lists as static targets (docs/metrics.md, "Monitoring stack"). Ports of the range nobody
// serves on (fewer runners than maxRunners) are scraped as down (`up == 0`).
import { createServer } from 'node:net';
import type { Config } from '../shared/config.js';

/** Whether `host:port` can be listened on now (a runner of an earlier scaler process, or another program, may hold it). */
function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export class LocalMetricsPorts {
  /** Ports given to runners that have not exited: a runner binds its port a moment after its launch, so a probe alone could hand it out twice. */
  private readonly held = new Map<string, number>();

  private constructor(
    private readonly first: number,
    private readonly count: number,
    private readonly host: string,
  ) {}

  /** The range of an installation, or undefined when metrics are off (metricsPort 0). */
  static of(config: Pick<Config, 'metricsPort' | 'metricsHost' | 'maxRunners'>): LocalMetricsPorts | undefined {
    if (config.metricsPort === 0) return undefined;
    return new LocalMetricsPorts(config.metricsPort + 1, Math.min(config.maxRunners, 65535 - config.metricsPort), config.metricsHost);
  }

  /** The ports Prometheus scrapes for runners: P+1 … P+maxRunners. */
  get range(): { first: number; last: number } {
    return { first: this.first, last: this.first + this.count - 1 };
  }

  /** A free port of the range for `runnerId`, held until release(); undefined when every one is taken. */
  async take(runnerId: string): Promise<number | undefined> {
    for (let port = this.first; port < this.first + this.count; port++) {
      if ([...this.held.values()].includes(port)) continue;
      // Held while probed, so that a launch meanwhile does not probe (and take) it too.
      this.held.set(runnerId, port);
      if (await portFree(port, this.host)) return port;
      this.held.delete(runnerId);
    }
    return undefined;
  }

  release(runnerId: string): void {
    this.held.delete(runnerId);
  }
}
