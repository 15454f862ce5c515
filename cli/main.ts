#!/usr/bin/env node
// The `tidepool` command. Each subcommand is a module exporting main(argv, env) → exit code,
// which tests call directly; this file only dispatches and sets the process's exit code.
import { stdio, EXIT } from './common.js';

type Command = { main(argv: string[], env: NodeJS.ProcessEnv): Promise<number>; summary: string };

const COMMANDS: Record<string, { load: () => Promise<Pick<Command, 'main'>>; summary: string }> = {
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

commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`).join('\n')}

Settings come from TIDEPOOL_* environment variables and an optional file (--config FILE or
TIDEPOOL_CONFIG_FILE); see the README. Exit codes: 0 ok, 1 failed, 2 usage, 3 not found,
78 invalid configuration.`;

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    stdio.out(USAGE);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = COMMANDS[name];
  if (!command) {
    stdio.err(`error: unknown command "${name}"\n\n${USAGE}`);
    return EXIT.usage;
  }
  return (await command.load()).main(rest, env);
}

main(process.argv.slice(2), process.env).then(
  (code) => {
    process.exitCode = code;
    // The one place that ends the process: if a stray handle (a socket in a retry loop) would
    // keep it alive after the command finished, leave anyway. unref: never delays a clean exit.
    setTimeout(() => process.exit(code), 3000).unref();
  },
  (err: unknown) => {
    stdio.err(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = EXIT.failed;
  },
);
