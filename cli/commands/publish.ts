// `tidepool publish <connection>`: request a sync.
import { idProblem } from '../../shared/ids.js';
import { newSyncRequest } from '../../shared/messages.js';
import { publishSyncWithRetries } from '../../shared/broker/publisher.js';
import { topologyFor } from '../../shared/broker/topology.js';
import { tlsFiles } from '../../shared/tls.js';
import { parseDuration } from '../../shared/units.js';
import { FINAL_STATUSES, type RunRecord } from '../../shared/store/runs.js';
import { sleep } from '../../shared/backoff.js';
import { CONFIG_OPTION, EXIT, UsageError, cliLogger, config, openStore, parse, run, stdio, type Io } from '../common.js';
import { formatRun } from './runs.js';

const USAGE = `usage: tidepool publish <connection> [--full-refresh] [--wait] [--timeout D] [--json] [--config FILE]

Publishes a sync request for the connection (confirmed by the broker before this returns) and
prints its sync id. While the broker is unreachable or restarting, the publish is tried again
with backoff until the timeout; exit 1 if it never was confirmed.

  --full-refresh  ignore committed state, re-read everything, overwrite the destination
  --wait          wait until the sync succeeds (exit 0) or is dead-lettered (exit 1)
  --timeout D     give up after D (exit 1): publishing, and with --wait the wait too (the sync
                  still runs); default 30s, or 10m with --wait
  --json          print the request (and with --wait, the run) as JSON`;

export async function main(argv: string[], env: NodeJS.ProcessEnv, io: Io = stdio): Promise<number> {
  return run(io, USAGE, async () => {
    const { values, positionals } = parse(
      argv,
      { ...CONFIG_OPTION, 'full-refresh': { type: 'boolean' }, wait: { type: 'boolean' }, timeout: { type: 'string' }, json: { type: 'boolean' } },
      true,
    );
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError('give exactly one connection id');
    const idError = idProblem('connection', positionals[0]);
    if (idError !== undefined) throw new UsageError(idError);
    const timeoutMs = values.timeout === undefined ? (values.wait ? 600_000 : 30_000) : parseDuration(values.timeout);
    if (timeoutMs === undefined) throw new UsageError(`--timeout: not a duration: ${values.timeout ?? ''}`);
    const cfg = config(env, values.config);
    const logger = cliLogger(cfg);
    const connectionId = positionals[0]!;
    const { store, close } = openStore(cfg, logger);
    try {
      if (!(await store.connections.get(connectionId))) {
        io.err(`error: unknown connection "${connectionId}" (see: tidepool connections list)`);
        return EXIT.notFound;
      }
      const request = newSyncRequest(connectionId, { fullRefresh: values['full-refresh'] ?? false, requestedBy: 'cli' });
      const started = Date.now();
      // Resolves only once the broker confirmed it; a PublishError says why not (exit 1).
      await publishSyncWithRetries(request, { url: cfg.amqpUrl, tls: tlsFiles(cfg, 'amqp'), topology: topologyFor(cfg.prefix, cfg), logger, timeoutMs, connectionName: 'tidepool-cli' });
      if (!values.wait) {
        io.out(values.json ? JSON.stringify(request) : request.syncId);
        return 0;
      }
      if (!values.json) io.err(`published ${request.syncId}; waiting…`);
      const deadline = started + timeoutMs;
      let last: RunRecord | undefined;
      while (Date.now() < deadline) {
        last = await store.runs.get(request.syncId);
        if (last && FINAL_STATUSES.has(last.status)) break;
        await sleep(500);
      }
      if (!last || !FINAL_STATUSES.has(last.status)) {
        io.out(values.json ? JSON.stringify({ request, run: last ?? null, timedOut: true }) : `${request.syncId} still ${last?.status ?? 'queued'} after ${Math.round(timeoutMs / 1000)} s`);
        return EXIT.failed;
      }
      io.out(values.json ? JSON.stringify({ request, run: last }) : formatRun(last));
      return last.status === 'succeeded' ? 0 : EXIT.failed;
    } finally {
      await close();
    }
  });
}
