// A program's first syncs share one `spec` run: concurrent syncs of a new connector program in
// one runner must not each start a connector (on Kubernetes a pod and a Secret) for one answer,
// and one sync's failed ask must not fail the others.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../shared/logger.js';
import type { CachedSpec } from '../../shared/store/specs.js';
import { connectorSpec } from '../../runner/sync/spec.js';
import { InMemoryConnectorLauncher, type ScriptContext } from '../helpers/in-memory-launcher.js';

const SPEC = { type: 'SPEC', spec: { connectionSpecification: { type: 'object', properties: {} } } };

function memorySpecs() {
  const entries = new Map<string, CachedSpec>();
  return { entries, get: (fp: string) => Promise.resolve(entries.get(fp)), put: (fp: string, e: CachedSpec) => Promise.resolve(void entries.set(fp, e)) };
}

/** A `spec` that answers once released, so several asks are surely in flight together. */
function gatedSpec(exitCodes: number[]) {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const launcher = new InMemoryConnectorLauncher({
    spec: async (ctx: ScriptContext) => {
      await gate;
      const code = exitCodes.shift() ?? 0;
      if (code === 0) ctx.stdout.write(`${JSON.stringify(SPEC)}\n`);
      else ctx.stderr.write('boom\n');
      return code;
    },
  });
  return { launcher, release };
}

const definition = { image: 'memory/spec', config: {} };
const logger = createLogger({ level: 'silent' });

describe('connectorSpec', () => {
  it('runs spec once for concurrent asks of one program and store, and caches the answer', async () => {
    const { launcher, release } = gatedSpec([0]);
    const specs = memorySpecs();
    const deps = { specs, launcher, logger, maxLineBytes: 1 << 20, tailLines: 10 };
    const asks = [1, 2, 3].map((i) => connectorSpec(definition, 'source', `run-${i}`, deps));
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    const results = await Promise.all(asks);
    expect(launcher.started).toHaveLength(1);
    expect(results.map((r) => r.spec)).toEqual([SPEC.spec, SPEC.spec, SPEC.spec]);
    expect(results.filter((r) => !r.cached)).toHaveLength(1);
    expect(specs.entries.size).toBe(1);
    // Cached now: a later ask runs nothing.
    await connectorSpec(definition, 'source', 'run-4', deps);
    expect(launcher.started).toHaveLength(1);
  });

  it('lets a waiter ask on its own when the shared ask found no spec, and keeps stores apart', async () => {
    // The first run dies without a SPEC (nothing cached, asked again next time): the waiter then
    // runs its own, which answers.
    const { launcher, release } = gatedSpec([1, 0]);
    const deps = { specs: memorySpecs(), launcher, logger, maxLineBytes: 1 << 20, tailLines: 10 };
    const first = connectorSpec(definition, 'source', 'run-a', deps);
    const second = connectorSpec(definition, 'source', 'run-b', deps);
    // Another store (another prefix in this process) does not wait for this one's ask.
    const other = connectorSpec(definition, 'source', 'run-c', { ...deps, specs: memorySpecs() });
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    const [a, b, c] = await Promise.all([first, second, other]);
    expect(launcher.started.map((r) => r.runId)).toEqual(['run-a-spec-source', 'run-c-spec-source', 'run-b-spec-source']);
    expect([a.spec, b.spec, c.spec]).toEqual([undefined, SPEC.spec, SPEC.spec]);
  });
});
