// `tidepool cancel <syncId>` / `tidepool cancel --connection <id>`: stop syncs (shared/cancel.ts).
import { userInfo } from 'node:os';
import { cancelConnection, cancelSync } from '../../shared/cancel.js';
import { idProblem } from '../../shared/ids.js';
import { CONFIG_OPTION, EXIT, UsageError, cliLogger, config, openStore, parse, printable, run, stdio, type Io } from '../common.js';

const USAGE = `usage: tidepool cancel <syncId> [--by NAME] [--json] [--config FILE]
       tidepool cancel --connection ID [--by NAME] [--json] [--config FILE]

Cancels a sync. Still queued (or waiting in a delay queue for a retry), it is acked without
running when a runner gets it; running, its runner stops it within about a second: connectors
killed, the destination's input cut short (it rolls back to its last STATE), state committed
only as far as the destination confirmed it. Its run record then says \`cancelled\`, by whom
and when; it is neither retried nor dead-lettered. A sync that already ended is left alone
(exit 1).

  --connection ID  cancel every sync of the connection requested until now, queued or running
  --by NAME        who cancels, for the run record (default: the OS user)
  --json           print the outcome as JSON`;

/** Who cancels when --by is not given: the OS user, as far as the OS says. */
function osUser(env: NodeJS.ProcessEnv): string {
  try {
    return userInfo().username;
  } catch {
    return env.USER ?? 'cli';
  }
}

export async function main(argv: string[], env: NodeJS.ProcessEnv, io: Io = stdio): Promise<number> {
  return run(io, USAGE, async () => {
    const { values, positionals } = parse(argv, { ...CONFIG_OPTION, connection: { type: 'string' }, by: { type: 'string' }, json: { type: 'boolean' } }, true);
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    const connectionId = values.connection;
    if ((connectionId === undefined) === (positionals.length === 0) || positionals.length > 1) throw new UsageError('give one sync id, or --connection ID');
    const idError = connectionId !== undefined ? idProblem('--connection', connectionId) : idProblem('sync id', positionals[0]);
    if (idError !== undefined) throw new UsageError(idError);
    const by = values.by ?? osUser(env);
    if (by.trim() === '' || by.length > 200) throw new UsageError('--by must be 1 to 200 characters');
    const cfg = config(env, values.config);
    const { store, close } = openStore(cfg, cliLogger(cfg));
    try {
      if (connectionId !== undefined) {
        if (!(await store.connections.get(connectionId))) {
          io.err(`error: unknown connection "${printable(connectionId)}" (see: tidepool connections list)`);
          return EXIT.notFound;
        }
        const result = await cancelConnection(store, connectionId, by);
        io.out(
          values.json
            ? JSON.stringify({ connectionId, ...result })
            : [`cancelled every sync of ${connectionId} requested until ${result.marker.at} (by ${result.marker.by})`, ...result.unfinished.map((u) => `  ${u.syncId} (was ${u.status})`)].map(printable).join('\n'),
        );
        return 0;
      }
      const syncId = positionals[0]!;
      const result = await cancelSync(store, syncId, by);
      if (values.json) io.out(JSON.stringify({ syncId, ...result }));
      else if (result.outcome === 'ended') io.err(printable(`${syncId} already ended (${result.status}): nothing to cancel`));
      else io.out(printable(`${syncId} cancelled by ${result.marker.by} at ${result.marker.at} (${result.status === undefined ? 'still queued: it will not run' : `was ${result.status}`})`));
      return result.outcome === 'ended' ? EXIT.failed : 0;
    } finally {
      await close();
    }
  });
}
