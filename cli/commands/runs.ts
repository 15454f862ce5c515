// `tidepool runs`: recent sync runs.
import { PHASES, RUN_STATUSES, recordedMs, type ConnectorStartTimes, type RunRecord, type RunStatus } from '../../shared/store/runs.js';
import { idProblem } from '../../shared/ids.js';
import { formatDuration } from '../../shared/units.js';
import { CONFIG_OPTION, UsageError, cliLogger, config, openStore, parse, printable, run, stdio, table, type Io } from '../common.js';

const USAGE = `usage: tidepool runs [--connection ID] [--status S] [--limit N] [--json] [--config FILE]
       tidepool runs show SYNC_ID [--json] [--config FILE]

Recent sync runs, newest first. S is one of ${RUN_STATUSES.join(', ')}.
\`show\`: one sync's run record in full, with where its time went as a timeline.`;

/** Characters of the widest bar in a timeline (the longest phase). */
const TIMELINE_WIDTH = 40;

export function formatRun(r: RunRecord): string {
  const lines = [
    `sync ${r.syncId}  connection ${r.connectionId}  ${r.status}  attempt ${r.attempt}`,
    `  runner ${r.runnerId}  started ${r.startedAt}${r.durationMs !== undefined ? `  took ${formatDuration(r.durationMs)}` : ''}`,
    `  ${r.records} records, ${r.bytes} bytes${r.stateVersion !== undefined ? `, state v${r.stateVersion}` : ''}`,
  ];
  for (const [stream, s] of Object.entries(r.streams)) lines.push(`    ${stream}: ${s.records} records, ${s.bytes} bytes`);
  if (r.connectors) {
    const who = (c: { ref: string; fingerprint: string; version?: string; image?: string }) =>
      `${c.ref}${c.version !== undefined ? ` (version ${c.version})` : ''}${c.image !== undefined && !c.ref.includes(c.image) ? ` ran ${c.image}` : ''} [${c.fingerprint}]`;
    lines.push(`  ran connection version ${r.connectionVersion ?? '?'}: source ${who(r.connectors.source)}, destination ${who(r.connectors.destination)}`);
  }
  if (r.retryAt) lines.push(`  next attempt at ${r.retryAt}`);
  if (r.cancelled) lines.push(`  cancelled by ${r.cancelled.by} at ${r.cancelled.at}`);
  if (r.error) {
    lines.push(`  error (${r.error.origin}/${r.error.type}${r.error.retryable ? ', retryable' : ''}): ${r.error.message}`);
    for (const [who, tail] of Object.entries(r.error.stderr ?? {})) {
      if (tail.length > 0) lines.push(`  ${who} stderr:`, ...tail.slice(-10).map((l) => `    ${l}`));
    }
  }
  lines.push(...timeline(r));
  for (const p of r.previousAttempts ?? []) {
    lines.push(`  earlier: attempt ${p.attempt} ${p.status} on ${p.runnerId} at ${p.startedAt}${p.error ? ` (${p.error.origin}/${p.error.type}): ${p.error.message}` : ''}`);
  }
  // Each line printable: a reason or stderr line cannot add lines of its own.
  return lines.map(printable).join('\n');
}

/**
 * Where the run's time went: each phase it reached with its start (from the publish), its
 * duration and a bar to scale, then how its connectors came up.
 */
export function timeline(r: Pick<RunRecord, 'phases'>): string[] {
  const phases = PHASES.flatMap((phase) => {
    const d = recordedMs(r.phases?.[phase]);
    return d === undefined ? [] : [{ phase, d }];
  });
  if (phases.length === 0) return [];
  const total = phases.reduce((sum, p) => sum + p.d, 0);
  const longest = Math.max(...phases.map((p) => p.d), 1);
  const name = Math.max(...phases.map((p) => p.phase.length));
  const lines = [`  where the time went (${formatDuration(total)} in all):`];
  let at = 0;
  for (const { phase, d } of phases) {
    const bar = '#'.repeat(Math.max(d > 0 ? 1 : 0, Math.round((d / longest) * TIMELINE_WIDTH)));
    lines.push(`    ${phase.padEnd(name)}  +${formatDuration(at).padEnd(8)} ${formatDuration(d).padStart(8)}  ${bar}`);
    at += d;
  }
  for (const role of ['source', 'destination'] as const) {
    const steps = startSteps(r.phases?.connectorStart?.[role]);
    if (steps) lines.push(`    ${role} start: ${steps}`);
  }
  return lines;
}

function startSteps(times: ConnectorStartTimes | undefined): string | undefined {
  const steps = (['scheduled', 'started', 'connected'] as const).flatMap((step) => {
    const d = recordedMs(times?.[`${step}Ms`]);
    return d === undefined ? [] : [`${step} +${formatDuration(d)}`];
  });
  return steps.length > 0 ? steps.join(', ') : undefined;
}

/** `tidepool runs show SYNC_ID`: the record in full. */
async function show(positionals: string[], values: { json?: boolean; config?: string }, env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  if (positionals.length !== 2) throw new UsageError('give one sync id: tidepool runs show SYNC_ID');
  const syncId = positionals[1]!;
  const idError = idProblem('sync id', syncId);
  if (idError !== undefined) throw new UsageError(idError);
  const cfg = config(env, values.config);
  const { store, close } = openStore(cfg, cliLogger(cfg));
  try {
    const record = await store.runs.get(syncId);
    if (!record) {
      io.err(`no run record for sync ${syncId}`);
      return 1;
    }
    io.out(values.json ? JSON.stringify(record) : formatRun(record));
    return 0;
  } finally {
    await close();
  }
}

export async function main(argv: string[], env: NodeJS.ProcessEnv, io: Io = stdio): Promise<number> {
  return run(io, USAGE, async () => {
    const { values, positionals } = parse(argv, { ...CONFIG_OPTION, connection: { type: 'string' }, status: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } }, true);
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    if (positionals[0] === 'show') return show(positionals, values, env, io);
    if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}`);
    const limit = values.limit === undefined ? 20 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError('--limit must be an integer from 1 to 10000');
    if (values.status !== undefined && !RUN_STATUSES.includes(values.status as RunStatus)) {
      throw new UsageError(`--status must be one of ${RUN_STATUSES.join(', ')}`);
    }
    const idError = values.connection === undefined ? undefined : idProblem('--connection', values.connection);
    if (idError !== undefined) throw new UsageError(idError);
    const cfg = config(env, values.config);
    const { store, close } = openStore(cfg, cliLogger(cfg));
    try {
      const { runs, corrupt } = await store.runs.listing({
        limit,
        ...(values.connection ? { connectionId: values.connection } : {}),
        ...(values.status ? { status: values.status as RunStatus } : {}),
      });
      // Listed without them, on stderr so that --json output stays an array of records.
      if (corrupt.length > 0) io.err(`warning: ${corrupt.length} corrupt run record(s) skipped: ${corrupt.map(printable).join(', ')}`);
      if (values.json) {
        io.out(JSON.stringify(runs));
        return 0;
      }
      if (runs.length === 0) {
        io.out('no runs');
        return 0;
      }
      io.out(
        table([
          ['SYNC', 'CONNECTION', 'STATUS', 'ATTEMPT', 'STARTED', 'DURATION', 'RECORDS', 'BYTES', 'RUNNER'],
          ...runs.map((r) => [
            r.syncId,
            r.connectionId,
            r.status,
            String(r.attempt),
            r.startedAt,
            r.durationMs === undefined ? '-' : formatDuration(r.durationMs),
            String(r.records),
            String(r.bytes),
            r.runnerId,
          ]),
        ]),
      );
      return 0;
    } finally {
      await close();
    }
  });
}
