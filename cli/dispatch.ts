// The `tidepool` command's table of subcommands and its dispatch: main.ts runs it; the CLI
// reference (npm run docs) and the tests read the same table. Subcommands load on demand, so a
// command starts only the code it needs.
import { PACKAGE_VERSION } from '../shared/paths.js';
import { EXIT, stdio, type Io } from './common.js';

export interface Subcommand {
  main(argv: string[], env: NodeJS.ProcessEnv, io?: Io): Promise<number>;
}

export const COMMANDS: Record<string, { load: () => Promise<Subcommand>; summary: string }> = {
  scaler: { load: () => import('./commands/scaler.js'), summary: 'watch the queue and launch runners' },
  runner: { load: () => import('./commands/runner.js'), summary: 'consume and run syncs until idle' },
  publish: { load: () => import('./commands/publish.js'), summary: 'request a sync of a connection' },
  connections: { load: () => import('./commands/connections.js'), summary: 'apply, list, show, check, pause and resume connections' },
  connectors: { load: () => import('./commands/connectors.js'), summary: 'the reference connectors, and the settings a connector takes' },
  runs: { load: () => import('./commands/runs.js'), summary: 'recent sync runs' },
  notifications: { load: () => import('./commands/notifications.js'), summary: 'send a test webhook notification' },
  cancel: { load: () => import('./commands/cancel.js'), summary: 'cancel a sync, or every sync of a connection' },
  schedules: { load: () => import('./commands/schedules.js'), summary: 'scheduled connections: next run, last slot' },
  dlq: { load: () => import('./commands/dlq.js'), summary: 'list, show, replay and purge dead letters' },
  demo: { load: () => import('./commands/demo.js'), summary: 'run the whole loop on this machine' },
};

export const USAGE = `usage: tidepool <command> [options]     (tidepool <command> --help for more)
       tidepool --version

commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(14)} ${c.summary}`).join('\n')}

Settings come from TIDEPOOL_* environment variables and an optional file (--config FILE or
TIDEPOOL_CONFIG_FILE); see docs/configuration.md. Exit codes: 0 ok, 1 failed, 2 usage,
3 not found, 78 invalid configuration.`;

/** What `tidepool --version` prints: the package's version, as in package.json and the changelog. */
export const VERSION_LINE = `tidepool ${PACKAGE_VERSION}`;

/**
 * Runs `tidepool <argv>`. `io` is handed to the subcommand only when given: without it each keeps
 * its own default (dlq's asks on the terminal).
 */
export async function main(argv: string[], env: NodeJS.ProcessEnv, given?: Io): Promise<number> {
  const io = given ?? stdio;
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(USAGE);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version' || name === '-V') {
    io.out(VERSION_LINE);
    return EXIT.ok;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.err(`error: unknown command "${name}"\n\n${USAGE}`);
    return EXIT.usage;
  }
  const subcommand = await command.load();
  return given ? subcommand.main(rest, env, given) : subcommand.main(rest, env);
}
