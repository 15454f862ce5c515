// The watch helper both Kubernetes launchers use, on an informer that needs no API server:
// events reach the adapter, a failed watch is restarted after a jittered backoff (not at once:
// a restart storm), and a stopped one never is.
import { KubeConfig, type Informer, type KubernetesObject, type ListPromise } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KubeWatch, WATCH_RESTART_BACKOFF, type InformerMaker } from '../../shared/kube-watch.js';
import { testLogger } from '../helpers/services.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the informer's callbacks take objects or errors
type Handler = (arg: any) => void;

/** An informer whose events and failures the test sends. */
class FakeInformer implements Informer<KubernetesObject> {
  readonly handlers = new Map<string, Handler[]>();
  starts = 0;
  stops = 0;
  failNextStart = false;
  on(verb: string, cb: Handler): void {
    this.handlers.set(verb, [...(this.handlers.get(verb) ?? []), cb]);
  }
  off(): void {}
  start(): Promise<void> {
    this.starts++;
    if (this.failNextStart) {
      this.failNextStart = false;
      return Promise.reject(new Error('refused'));
    }
    return Promise.resolve();
  }
  stop(): Promise<void> {
    this.stops++;
    return Promise.resolve();
  }
  emit(verb: string, arg: unknown): void {
    for (const h of this.handlers.get(verb) ?? []) h(arg);
  }
}

describe('KubeWatch', () => {
  let informer: FakeInformer;
  let made: { path: string; labelSelector?: string | undefined }[];
  const make: InformerMaker = <T extends KubernetesObject>(_kc: KubeConfig, path: string, _list: ListPromise<T>, labelSelector?: string) => {
    made.push({ path, labelSelector });
    return informer;
  };
  const changes: [string | undefined, boolean][] = [];
  const watch = () =>
    new KubeWatch(
      new KubeConfig(),
      { what: 'test watch', path: '/api/v1/namespaces/ns/pods', list: () => Promise.resolve({ items: [] as KubernetesObject[] }), labelSelector: 'a=b', onChange: (o: KubernetesObject, deleted: boolean) => changes.push([o.metadata?.name, deleted]) },
      testLogger(),
      make,
    );

  beforeEach(() => {
    informer = new FakeInformer();
    made = [];
    changes.length = 0;
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('makes one informer on the path and selector, started once however often start() is called', async () => {
    const w = watch();
    await Promise.all([w.start(), w.start()]);
    await w.start();
    expect(made).toHaveLength(1);
    expect(made[0]).toMatchObject({ path: '/api/v1/namespaces/ns/pods', labelSelector: 'a=b' });
    expect(informer.starts).toBe(1);
  });

  it('hands every added, changed and deleted object to the adapter', async () => {
    await watch().start();
    informer.emit('add', { metadata: { name: 'p1' } });
    informer.emit('update', { metadata: { name: 'p1' } });
    informer.emit('delete', { metadata: { name: 'p1' } });
    expect(changes).toEqual([
      ['p1', false],
      ['p1', false],
      ['p1', true],
    ]);
  });

  it('restarts a failed watch after a backoff that grows while restarts fail, and starts over once one succeeds', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(1); // the top of each jitter range
    await watch().start();
    informer.emit('error', new Error('gone'));
    await vi.advanceTimersByTimeAsync(WATCH_RESTART_BACKOFF.baseMs - 1);
    expect(informer.starts).toBe(1); // not at once
    informer.failNextStart = true;
    await vi.advanceTimersByTimeAsync(1);
    expect(informer.starts).toBe(2);
    // That restart failed and the informer reports it: the next wait is twice as long.
    informer.emit('error', new Error('still gone'));
    await vi.advanceTimersByTimeAsync(2 * WATCH_RESTART_BACKOFF.baseMs - 1);
    expect(informer.starts).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(informer.starts).toBe(3);
    // It succeeded: a later failure waits the first delay again.
    informer.emit('error', new Error('gone again'));
    await vi.advanceTimersByTimeAsync(WATCH_RESTART_BACKOFF.baseMs);
    expect(informer.starts).toBe(4);
  });

  it('never restarts a stopped watch', async () => {
    const w = watch();
    await w.start();
    informer.emit('error', new Error('gone'));
    await w.stop();
    informer.emit('error', new Error('gone'));
    await vi.advanceTimersByTimeAsync(WATCH_RESTART_BACKOFF.capMs);
    expect(informer.starts).toBe(1);
    expect(informer.stops).toBe(1);
  });
});
