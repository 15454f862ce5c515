// The reference connectors' settings, from each connector's own `spec`, asked in-process of the
// same Connector object its program runs (connectors/*/connector.ts), so the page says what the
// connectors accept and needs no build or child process.
import { PassThrough, Writable } from 'node:stream';
import type { z } from 'zod';
import { BUILTIN_CONNECTORS, BUILTIN_CONNECTOR_SUMMARIES } from '../../shared/connections.js';
import { destinationSyncModes } from '../../shared/connector-spec.js';
import type { AirbyteMessage, ConnectorSpecification } from '../../shared/protocol.js';
import { runInvocation, type Connector } from '../../connectors/lib/cli.js';
import { sourceFaker } from '../../connectors/source-faker/connector.js';
import { sourcePostgres } from '../../connectors/source-postgres/connector.js';
import { sourceE2eTest } from '../../connectors/source-e2e-test/connector.js';
import { destinationJsonl } from '../../connectors/destination-jsonl/connector.js';
import { destinationPostgres } from '../../connectors/destination-postgres/connector.js';
import { destinationE2eTest } from '../../connectors/destination-e2e-test/connector.js';
import { settingRows } from '../commands/connectors.js';
import { cell, generatedHeader, table } from './markdown.js';

type AnyConnector = Connector<z.ZodType>;

/** Each reference connector as its program runs it (destination-e2e-test with no sync modes of the environment's). */
const CONNECTORS: Record<(typeof BUILTIN_CONNECTORS)[number], () => AnyConnector> = {
  'source-faker': () => sourceFaker,
  'source-postgres': () => sourcePostgres,
  'source-e2e-test': () => sourceE2eTest().connector,
  'destination-jsonl': () => destinationJsonl,
  'destination-postgres': () => destinationPostgres,
  'destination-e2e-test': () => destinationE2eTest({}).connector,
};

/** What `<connector> spec` prints, read from its stdout. */
export async function specOf(connector: AnyConnector): Promise<ConnectorSpecification> {
  let stdout = '';
  const out = new Writable({ write: (chunk: Buffer, _encoding, done) => ((stdout += chunk.toString()), done()) });
  const stderr = new Writable({ write: (_chunk, _encoding, done) => done() });
  const code = await runInvocation(connector, { command: 'spec' }, { stdin: new PassThrough(), stdout: out, stderr });
  const spec = stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as AirbyteMessage)
    .find((m) => m.type === 'SPEC');
  if (code !== 0 || spec?.type !== 'SPEC') throw new Error(`${connector.name} printed no SPEC (exit ${code})`);
  return spec.spec;
}

/** docs/reference/connectors.md. */
export async function connectorsPage(): Promise<string> {
  const parts = [
    ...generatedHeader("Reference connectors' settings", "each reference connector's own `spec` (`connectors/*/connector.ts`)"),
    'What each connector is and how it behaves is in [Connectors](../connectors.md);',
    '`tidepool connectors spec <name>` prints the same settings from the connector itself.',
  ];
  for (const name of BUILTIN_CONNECTORS) {
    const spec = await specOf(CONNECTORS[name]());
    const summary = BUILTIN_CONNECTOR_SUMMARIES[name];
    parts.push('', `## ${name}`, '', `${summary.charAt(0).toUpperCase()}${summary.slice(1)}.`, '');
    const rows = settingRows(spec.connectionSpecification, '', 0, Infinity);
    if (rows.length === 0) parts.push('No settings.');
    else parts.push(...table(['setting', 'type', 'required', 'default', 'description'], rows.map(([setting, type, required, def, description]) => [`\`${setting}\``, cell(type ?? ''), required ?? '', def ? `\`${cell(def)}\`` : '', cell(description ?? '')])));
    if (name.startsWith('destination-')) parts.push('', `Destination sync modes: ${destinationSyncModes(spec).map((m) => `\`${m}\``).join(', ')}.`);
  }
  parts.push('');
  return parts.join('\n');
}
