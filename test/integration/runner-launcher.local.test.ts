import { rm } from 'node:fs/promises';
import { LocalProcessRunnerLauncher } from '../../scaler/local-process.js';
import { describeRunnerLauncherConformance } from '../conformance/runner-launcher.js';
import { testConfig, testLogger } from '../helpers/services.js';

describeRunnerLauncherConformance('local process', () => {
  const config = testConfig('runner-launcher-local', { idleTimeout: '1500ms', heartbeatInterval: '300ms', heartbeatTtl: '2s' });
  return Promise.resolve({
    config,
    launcher: new LocalProcessRunnerLauncher(config, testLogger()),
    cleanup: () => rm(`/tmp/${config.prefix}-out`, { recursive: true, force: true }),
  });
});
