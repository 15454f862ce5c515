// Scaler leadership through a Lease on the real API server.
import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../shared/kube.js';
import { KubernetesLease } from '../../scaler/lease.js';
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
});
