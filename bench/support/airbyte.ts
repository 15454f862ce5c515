// Where the real Airbyte connectors from PyPI are, as scripts/airbyte-connectors installs them
// (scripts/setup runs it): one virtual environment per pinned version under a cache root. Tests
// and the first-sync bench run them from here.
import { join } from 'node:path';

/** Keep in step with scripts/airbyte-connectors (SOURCE_FAKER_VERSION). */
export const SOURCE_FAKER_VERSION = '7.2.1';

/** The cache root; TIDEPOOL_TEST_AIRBYTE_VENVS overrides it, as it does for the script. */
export function airbyteVenvsRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env['TIDEPOOL_TEST_AIRBYTE_VENVS'] || '/var/cache/tidepool/venvs';
}

/** The venv of airbyte-source-faker (a symlink the script renames into place once the install is complete). */
export function sourceFakerVenv(env: NodeJS.ProcessEnv = process.env): string {
  return join(airbyteVenvsRoot(env), `airbyte-source-faker-${SOURCE_FAKER_VERSION}`);
}

/** The connector program: `source-faker spec | check | discover | read ...`. */
export function sourceFakerCommand(env: NodeJS.ProcessEnv = process.env): string {
  return join(sourceFakerVenv(env), 'bin', 'source-faker');
}
