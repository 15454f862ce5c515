// The CLI reference: `tidepool --help` and each command's `--help`, as the command prints them,
// run in-process with the output captured.
import { COMMANDS, USAGE } from '../dispatch.js';
import type { Io } from '../common.js';
import { generatedHeader } from './markdown.js';

/** What `tidepool <name> --help` prints. */
export async function helpOf(name: string): Promise<string> {
  const printed: string[] = [];
  const io: Io = { out: (text) => printed.push(text), err: (text) => printed.push(text) };
  const code = await (await COMMANDS[name]!.load()).main(['--help'], {}, io);
  if (code !== 0) throw new Error(`tidepool ${name} --help exited ${code}: ${printed.join('\n')}`);
  return printed.join('\n').trimEnd();
}

/** docs/reference/cli.md. */
export async function cliPage(): Promise<string> {
  const parts = [
    ...generatedHeader('CLI reference', "each command's `--help` (`cli/commands/`)"),
    'What the commands are for, with examples, is in [Operations](../operations.md).',
    '',
    '## tidepool',
    '',
    '```',
    USAGE,
    '```',
  ];
  for (const name of Object.keys(COMMANDS)) parts.push('', `## tidepool ${name}`, '', '```', await helpOf(name), '```');
  parts.push('');
  return parts.join('\n');
}
