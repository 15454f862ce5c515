// `tidepool scaler`: watch the queue, launch runners.
import { createLogger } from '../../shared/logger.js';
import { createRegistry, serveMetrics, type MetricsServer } from '../../shared/metrics.js';
import { onShutdownSignals } from '../../shared/signals.js';
import { createRedis } from '../../shared/store/redis.js';
import { tlsFiles } from '../../shared/tls.js';
import { createStore } from '../../shared/store/index.js';
import { createRunnerLauncher } from '../../scaler/launchers.js';
import { Scaler } from '../../scaler/loop.js';
import { ScalerMetrics } from '../../scaler/metrics.js';
import { Deliverer } from '../../scaler/notifications/deliverer.js';
import { NotificationMetrics } from '../../scaler/notifications/metrics.js';
import { parseTargets } from '../../shared/notifications/targets.js';
import { startDashboard, type Dashboard } from '../../scaler/dashboard/server.js';
import { CONFIG_OPTION, UsageError, config, parse, run, stdio, type Io } from '../common.js';

const USAGE = `usage: tidepool scaler [--once] [--json] [--dashboard-port N] [--config FILE]

Every TIDEPOOL_POLL_INTERVAL (default 1s) reads the queue depth and the runners' heartbeats and
launches runners (TIDEPOOL_RUNNER_LAUNCHER, default local) up to TIDEPOOL_MAX_RUNNERS. Never
scales down: runners leave by themselves when idle. One scaler leads at a time; the leader
also publishes the syncs of connections with a schedule, once per slot (tidepool schedules).

  --once              observe and decide once, print what it saw, exit
  --json              with --once: print it as JSON
  --dashboard-port N  serve the dashboard, its JSON API (/api/) and /metrics on port N
                      (TIDEPOOL_DASHBOARD_PORT; on TIDEPOOL_DASHBOARD_HOST, default 127.0.0.1;
                      anywhere else TIDEPOOL_DASHBOARD_TOKEN is required)

TIDEPOOL_METRICS_PORT serves /metrics alone on a port of its own (Prometheus scraping).`;

export async function main(argv: string[], env: NodeJS.ProcessEnv, io: Io = stdio): Promise<number> {
  return run(io, USAGE, async () => {
    const { values } = parse(argv, { ...CONFIG_OPTION, once: { type: 'boolean' }, json: { type: 'boolean' }, 'dashboard-port': { type: 'string' } });
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    const dashboardPort = values['dashboard-port'];
    if (dashboardPort !== undefined && !/^\d{1,5}$/.test(dashboardPort)) throw new UsageError(`--dashboard-port must be a port number (got "${dashboardPort}")`);
    const cfg = config(env, values.config, dashboardPort !== undefined ? { dashboardPort: Number(dashboardPort) } : {});
    const logger = createLogger({ level: values.once ? 'warn' : cfg.logLevel, name: 'tidepool', destination: values.once ? 2 : 1 });
    const redis = createRedis(cfg.redisUrl, logger, { tls: tlsFiles(cfg, 'redis') });
    const store = createStore(redis, cfg);
    const metrics = new ScalerMetrics(createRegistry({ process: !values.once }));
    metrics.reconnects.watchRedis(redis);
    const chosen = await createRunnerLauncher(cfg, logger);
    const launcher = metrics.instrument(chosen.launcher);
    const leadership = chosen.leadership;
    const scaler = new Scaler({ config: cfg, logger, launcher, store, onTick: (s) => metrics.observe(s), onBrokerRestored: () => metrics.reconnects.broker.inc(), onTickFailed: () => metrics.tickFailed(), onScheduleSlot: (d) => metrics.scheduleSlot(d), ...(leadership ? { leadership } : {}) });
    // Webhooks are sent by the leading scaler alone (scaler/notifications/deliverer.ts says why).
    const deliverer = new Deliverer({ store, targets: parseTargets(cfg.notifications), logger, metrics: new NotificationMetrics(metrics.registry), isLeader: () => scaler.last?.leader === true });
    let dashboard: Dashboard | undefined;
    let metricsServer: MetricsServer | undefined;
    try {
      if (values.once) {
        const s = await scaler.tick();
        io.out(values.json ? JSON.stringify(s) : `ready=${s.ready} inFlight=${s.inFlight} running=${s.running} starting=${s.starting} launched=${s.launched} leader=${s.leader} (${s.reason})`);
        await scaler.stop();
        return 0;
      }
      if (cfg.dashboardPort > 0) {
        dashboard = await startDashboard({ config: cfg, store, logger, registry: metrics.registry, snapshot: () => scaler.last });
      }
      if (cfg.metricsPort > 0) {
        metricsServer = await serveMetrics({ registry: metrics.registry, port: cfg.metricsPort, host: cfg.metricsHost, logger });
      }
      await scaler.start();
      deliverer.start();
      await new Promise<void>((resolve) => {
        const unsubscribe = onShutdownSignals({
          graceful: () => {
            unsubscribe();
            resolve();
          },
          force: () => resolve(),
        });
      });
      await deliverer.stop();
      await scaler.stop();
      return 0;
    } finally {
      await dashboard?.close();
      await metricsServer?.close();
      await redis.quit().catch(() => redis.disconnect());
    }
  });
}
