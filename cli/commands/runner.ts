// `tidepool runner`: consume syncs until idle or told to stop.
import { randomBytes } from 'node:crypto';
import { createLogger } from '../../shared/logger.js';
import { createRegistry, serveMetrics, type MetricsServer } from '../../shared/metrics.js';
import { onShutdownSignals } from '../../shared/signals.js';
import { createConnectorLauncher } from '../../runner/launch/launchers.js';
import { secretSourceFor } from '../../runner/secrets/sources.js';
import { RunnerMetrics } from '../../runner/metrics.js';
import { dropRoot } from '../../runner/privileges.js';
import { Runner } from '../../runner/runner.js';
import { CONFIG_OPTION, config, parse, run, stdio, type Io } from '../common.js';

const USAGE = `usage: tidepool runner [--runner-id ID] [--config FILE]

Consumes sync requests (prefetch = TIDEPOOL_CONCURRENCY), runs each through its connectors,
commits state and records the run. Exits 0 after TIDEPOOL_IDLE_TIMEOUT with nothing to do.
SIGTERM: stop consuming, finish in-flight syncs within TIDEPOOL_SHUTDOWN_GRACE, leave the rest
unacked for another runner; a second SIGTERM aborts at once.
TIDEPOOL_METRICS_PORT (default 0: off) serves Prometheus metrics at /metrics.
Started as root, it runs as TIDEPOOL_RUNNER_USER (default tidepool, which scripts/setup creates),
and so do its connectors.`;

export async function main(argv: string[], env: NodeJS.ProcessEnv, io: Io = stdio): Promise<number> {
  return run(io, USAGE, async () => {
    const { values } = parse(argv, { ...CONFIG_OPTION, 'runner-id': { type: 'string' } });
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    const cfg = config(env, values.config);
    const runnerId = values['runner-id'] ?? `runner-${randomBytes(4).toString('hex')}`;
    const logger = createLogger({ level: cfg.logLevel, name: 'tidepool' });
    // Before any connection or launch: nothing below runs as root unless TIDEPOOL_RUNNER_USER says so.
    dropRoot(cfg, logger);
    const connectors = await createConnectorLauncher(cfg, logger, runnerId);
    // With the process's own CPU and memory metrics: one runner per process.
    const metrics = new RunnerMetrics(createRegistry({ process: true }));
    const runner = new Runner({
      config: cfg,
      logger,
      launcher: connectors.launcher,
      secretSource: secretSourceFor(cfg),
      runnerId,
      metrics,
      prepare: (store) => connectors.prepare(store),
      onBrokerRestored: () => metrics.reconnects.broker.inc(),
    });
    const unsubscribe = onShutdownSignals({
      graceful: (signal) => {
        logger.info({ signal }, 'shutdown requested: draining');
        void runner.stop('signal');
      },
      force: (signal) => {
        logger.warn({ signal }, 'second signal: aborting in-flight syncs');
        void runner.stop('signal');
      },
    });
    let metricsServer: MetricsServer | undefined;
    try {
      if (cfg.metricsPort > 0) {
        // Metrics are worth a warning, not a runner: a port taken (two runners on one host) leaves this one without.
        metricsServer = await serveMetrics({ registry: metrics.registry, port: cfg.metricsPort, host: cfg.metricsHost, logger }).catch((err: unknown) => {
          logger.warn({ err: (err as Error).message }, 'not serving /metrics');
          return undefined;
        });
      }
      await runner.start();
      return await runner.done;
    } finally {
      unsubscribe();
      await metricsServer?.close();
      await connectors.close();
    }
  });
}
