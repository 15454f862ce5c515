// The in-memory launcher passes the same contract as the real ones: what sync tests built on it
// learn about the runner holds for processes and pods too.
import { describeConnectorLauncherConformance } from '../conformance/connector-launcher.js';
import { InMemoryConnectorLauncher } from '../helpers/in-memory-launcher.js';
import { createTestDatabase } from '../helpers/pg.js';

describeConnectorLauncherConformance('in-memory', async () => {
  const db = await createTestDatabase('conformance_memory');
  return { launcher: new InMemoryConnectorLauncher(), database: { connectorConfig: { ...db.config }, pool: db.pool }, cleanup: () => db.drop() };
});
