// `tidepool schedules`: each scheduled connection, its next run, its last slot and what became of it.
import { scheduleOverview, type ScheduleOverview } from '../../scaler/schedules/overview.js';
import { CONFIG_OPTION, cliLogger, config, openStore, parse, run, stdio, table, type Io } from '../common.js';

const USAGE = `usage: tidepool schedules [--json] [--config FILE]

Every connection with a schedule: its cron pattern and time zone, whether it is paused
(tidepool connections pause|resume ID), when its next sync is due, and its last slot: published
(with the sync id), skipped (paused, or a sync of the connection still queued or running) or
missed (no scaler led at the slot and catchUp left it).`;

function lastSlot(o: ScheduleOverview): string {
  const last = o.lastSlot;
  if (!last) return 'none yet';
  const what = last.outcome === 'published' ? `published ${last.syncId ?? ''}` : `${last.outcome}${last.reason ? `: ${last.reason}` : ''}`;
  return `${last.slot} ${what}`;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv, io: Io = stdio): Promise<number> {
  return run(io, USAGE, async () => {
    const { values } = parse(argv, { ...CONFIG_OPTION, json: { type: 'boolean' } });
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    const cfg = config(env, values.config);
    const { store, close } = openStore(cfg, cliLogger(cfg));
    try {
      const overview = await scheduleOverview(store);
      if (values.json) io.out(JSON.stringify(overview));
      else if (overview.length === 0) io.out('no scheduled connections (give one a schedule: {cron: "0 * * * *"} and apply it)');
      else
        io.out(
          table([
            ['CONNECTION', 'CRON', 'TIMEZONE', 'STATE', 'NEXT RUN', 'LAST SLOT'],
            ...overview.map((o) => [o.connectionId, o.schedule.cron, o.schedule.timezone, o.paused ? 'paused' : 'active', o.paused ? '(paused)' : (o.nextRun ?? 'never'), lastSlot(o)]),
          ]),
        );
      return 0;
    } finally {
      await close();
    }
  });
}
