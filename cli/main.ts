#!/usr/bin/env node
// The `tidepool` command. Each subcommand is a module exporting main(argv, env) → exit code,
// which tests call directly; dispatch.ts picks one, and this file only sets the process's exit code.
import { stdio, EXIT } from './common.js';
import { main } from './dispatch.js';

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
