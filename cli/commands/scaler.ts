// `tidepool scaler`: watch the queue, launch runners.
import { createLogger } from '../../shared/logger.js';
import { onShutdownSignals } from '../../shared/signals.js';
import { createRedis } from '../../shared/store/redis.js';
import { createStore } from '../../shared/store/index.js';
import { createRunnerLauncher } from '../../scaler/launchers.js';
import { Scaler } from '../../scaler/loop.js';
import { CONFIG_OPTION, config, parse, run, stdio, type Io } from '../common.js';

const USAGE = `usage: tidepool scaler [--once] [--json] [--config FILE]

Every TIDEPOOL_POLL_INTERVAL (default 1s) reads the queue depth and the runners' heartbeats and
launches runners (TIDEPOOL_RUNNER_LAUNCHER, default local) up to TIDEPOOL_MAX_RUNNERS. Never
scales down: runners leave by themselves when idle. One scaler leads at a time.

  --once   observe and decide once, print what it saw, exit
  --json   with --once: print it as JSON`;

export async function main(argv: string[], env: NodeJS.ProcessEnv, io: Io = stdio): Promise<number> {
  return run(io, USAGE, async () => {
    const { values } = parse(argv, { ...CONFIG_OPTION, once: { type: 'boolean' }, json: { type: 'boolean' } });
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    const cfg = config(env, values.config);
    const logger = createLogger({ level: values.once ? 'warn' : cfg.logLevel, name: 'tidepool', destination: values.once ? 2 : 1 });
    const redis = createRedis(cfg.redisUrl, logger);
    const store = createStore(redis, cfg);
    const { launcher, leadership } = await createRunnerLauncher(cfg, logger);
    const scaler = new Scaler({ config: cfg, logger, launcher, store, ...(leadership ? { leadership } : {}) });
    try {
      if (values.once) {
        const s = await scaler.tick();
        io.out(values.json ? JSON.stringify(s) : `ready=${s.ready} inFlight=${s.inFlight} running=${s.running} starting=${s.starting} launched=${s.launched} leader=${s.leader} (${s.reason})`);
        await scaler.stop();
        return 0;
      }
      await scaler.start();
      await new Promise<void>((resolve) => {
        const unsubscribe = onShutdownSignals({
          graceful: () => {
            unsubscribe();
            resolve();
          },
          force: () => resolve(),
        });
      });
      await scaler.stop();
      return 0;
    } finally {
      await redis.quit().catch(() => redis.disconnect());
    }
  });
}
