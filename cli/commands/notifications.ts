// `tidepool notifications test`: send a test event now, straight to the targets (not through the
// outbox), and say what each answered — to check a URL, a secret, a Slack webhook before a real
// failure needs them.
import { idProblem } from '../../shared/ids.js';
import { newEvent } from '../../shared/notifications/events.js';
import { sendEvent, shownUrl } from '../../shared/notifications/send.js';
import { parseTargets, targetSchema, type Target } from '../../shared/notifications/targets.js';
import { CONFIG_OPTION, EXIT, UsageError, cliLogger, config, openStore, parse, run, stdio, table, type Io } from '../common.js';

const USAGE = `usage: tidepool notifications test [--url U [--format json|slack]] [--connection ID] [--json] [--config FILE]

Sends a notification.test event to the installation's webhooks (TIDEPOOL_NOTIFICATIONS), or to U
alone (unsigned), plus those of connection ID; prints each target's answer. Exit 1 if any failed.`;

export async function main(argv: string[], env: NodeJS.ProcessEnv, io: Io = stdio): Promise<number> {
  return run(io, USAGE, async () => {
    const { values, positionals } = parse(argv, { ...CONFIG_OPTION, url: { type: 'string' }, format: { type: 'string' }, connection: { type: 'string' }, json: { type: 'boolean' } }, true);
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    if (positionals.length !== 1 || positionals[0] !== 'test') throw new UsageError('expected: tidepool notifications test');
    const idError = values.connection === undefined ? undefined : idProblem('--connection', values.connection);
    if (idError !== undefined) throw new UsageError(idError);
    const cfg = config(env, values.config);
    let targets: Target[];
    if (values.url !== undefined) {
      const given = targetSchema.safeParse({ url: values.url, format: values.format ?? 'json' });
      if (!given.success) throw new UsageError(`--url/--format: ${given.error.issues.map((i) => i.message).join('; ')}`);
      targets = [given.data];
    } else {
      if (values.format !== undefined) throw new UsageError('--format goes with --url');
      targets = parseTargets(cfg.notifications);
    }
    if (values.connection !== undefined) {
      const { store, close } = openStore(cfg, cliLogger(cfg));
      try {
        const connection = await store.connections.get(values.connection);
        if (!connection) {
          io.err(`error: no connection "${values.connection}"`);
          return EXIT.notFound;
        }
        targets.push(...(connection.notifications ?? []));
      } finally {
        await close();
      }
    }
    if (targets.length === 0) throw new UsageError('no webhooks configured: set TIDEPOOL_NOTIFICATIONS, give --url, or --connection with notifications');
    const event = newEvent({ type: 'notification.test', ...(values.connection !== undefined ? { connectionId: values.connection } : {}), data: { message: 'a test notification from tidepool' } });
    const results = await Promise.all(targets.map(async (t) => ({ url: shownUrl(t.url), format: t.format, signed: t.secret !== undefined || t.secretRef !== undefined, result: await sendEvent(event, t, { timeoutMs: 10_000, attempt: 1 }) })));
    if (values.json) {
      io.out(JSON.stringify({ eventId: event.id, results: results.map((r) => ({ url: r.url, format: r.format, signed: r.signed, ...r.result })) }));
    } else {
      io.out(table([['URL', 'FORMAT', 'SIGNED', 'RESULT'], ...results.map((r) => [r.url, r.format, r.signed ? 'yes' : 'no', r.result.ok ? `ok (HTTP ${r.result.status})` : `failed: ${r.result.message}`])]));
    }
    return results.every((r) => r.result.ok) ? 0 : EXIT.failed;
  });
}
