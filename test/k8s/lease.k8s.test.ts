// Scaler leadership through a Lease on the real API server.
import { randomBytes } from 'node:crypto';
import { CoordinationV1Api, CoreV1Api, V1MicroTime } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../shared/kube.js';
import { KubernetesLease } from '../../scaler/leadership/lease.js';
import { waitFor } from '../helpers/services.js';
import { CLUSTER, createNamespace } from './cluster.js';

describe('KubernetesLease', () => {
  const kc = loadKubeConfig(CLUSTER.kubeconfig);
  const namespace = `tp-lease-${randomBytes(3).toString('hex')}`;
  beforeAll(async () => {
    await createNamespace(kc, namespace);
  });
  afterAll(async () => {
    await kc.makeApiClient(CoreV1Api).deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  it('has one leader; another takes over after the lease expires, or at once when it resigns', async () => {
    const a = new KubernetesLease(kc, namespace, 'scaler', 'a', 2000);
    const b = new KubernetesLease(kc, namespace, 'scaler', 'b', 2000);
    expect(await a.acquireOrRenew()).toBe(true);
    expect(await b.acquireOrRenew()).toBe(false);
    expect(await a.acquireOrRenew()).toBe(true);
    await waitFor('b to take the expired lease', () => b.acquireOrRenew(), 10_000, 250);
    expect(await a.acquireOrRenew()).toBe(false);
    await b.resign();
    expect(await a.acquireOrRenew()).toBe(true);
  });

  it('the leader writes at most every ttl/3, from its last write; an edit in between costs one fresh read, not the lead', async () => {
    const leases = kc.makeApiClient(CoordinationV1Api);
    const read = () => leases.readNamespacedLease({ name: 'quiet', namespace });
    const a = new KubernetesLease(kc, namespace, 'quiet', 'a', 3000);
    expect(await a.acquireOrRenew()).toBe(true);
    const first = await read();
    // Asked every tick within ttl/3 (1 s): nothing written.
    for (let i = 0; i < 5; i++) expect(await a.acquireOrRenew()).toBe(true);
    expect((await read()).metadata?.resourceVersion).toBe(first.metadata?.resourceVersion);

    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await a.acquireOrRenew()).toBe(true);
    const renewed = await read();
    expect(renewed.metadata?.resourceVersion).not.toBe(first.metadata?.resourceVersion);
    expect(new Date(renewed.spec!.renewTime!).getTime()).toBeGreaterThan(new Date(first.spec!.renewTime!).getTime());

    // Someone else writes the lease (a label): a's copy is stale, its write a 409; it reads
    // afresh, finds itself the holder, and renews.
    renewed.metadata!.labels = { edited: 'yes' };
    renewed.spec!.renewTime = new V1MicroTime(renewed.spec!.renewTime!);
    renewed.spec!.acquireTime = new V1MicroTime(renewed.spec!.acquireTime!);
    const edited = await leases.replaceNamespacedLease({ name: 'quiet', namespace, body: renewed });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await a.acquireOrRenew()).toBe(true);
    const after = await read();
    expect(after.metadata?.resourceVersion).not.toBe(edited.metadata?.resourceVersion);
    expect(after.metadata?.labels).toEqual({ edited: 'yes' });
    expect(after.spec?.holderIdentity).toBe('a');
    expect(after.spec?.leaseTransitions).toBe(0);
  });
});
