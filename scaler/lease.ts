// Leader election through a coordination.k8s.io Lease, for scalers with several replicas.
// Optimistic concurrency does the arbitration: every update carries the resourceVersion read,
// so of two replicas racing for an expired lease one gets 409 and stays a follower.
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease, type V1LeaseSpec } from '@kubernetes/client-node';
import { isConflict, isNotFound } from '../shared/kube.js';
import type { Leadership } from './leadership.js';

export class KubernetesLease implements Leadership {
  private readonly api: CoordinationV1Api;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
    private readonly name: string,
    private readonly holder: string,
    private readonly ttlMs: number,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.api = kc.makeApiClient(CoordinationV1Api);
  }

  async acquireOrRenew(): Promise<boolean> {
    // Lease times are MicroTime: a plain Date serialises with milliseconds, which the API server
    // rejects ("cannot be handled as a Lease: parsing time"), so every time written is one.
    const now = new V1MicroTime(this.now());
    const durationSeconds = Math.max(1, Math.ceil(this.ttlMs / 1000));
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        await this.api.createNamespacedLease({
          namespace: this.namespace,
          body: {
            metadata: { name: this.name, namespace: this.namespace },
            spec: { holderIdentity: this.holder, leaseDurationSeconds: durationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
          },
        });
        return true;
      } catch (e) {
        if (isConflict(e)) return false;
        throw e;
      }
    }
    const spec = lease.spec ?? {};
    const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = renewed + (spec.leaseDurationSeconds ?? durationSeconds) * 1000 < now.getTime();
    const mine = spec.holderIdentity === this.holder;
    if (!mine && !expired && spec.holderIdentity) return false;
    lease.spec = spec;
    asMicroTimes(spec);
    spec.holderIdentity = this.holder;
    spec.leaseDurationSeconds = durationSeconds;
    spec.renewTime = now;
    if (!mine) {
      spec.acquireTime = now;
      spec.leaseTransitions = (spec.leaseTransitions ?? 0) + 1;
    }
    try {
      await this.api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body: lease });
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  async resign(): Promise<void> {
    try {
      const lease = await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace });
      if (lease.spec?.holderIdentity !== this.holder) return;
      // An empty holder and an expired renewTime let the next replica take over at once.
      asMicroTimes(lease.spec);
      lease.spec.holderIdentity = '';
      lease.spec.renewTime = new V1MicroTime(0);
      await this.api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body: lease });
    } catch (err) {
      if (!isNotFound(err) && !isConflict(err)) throw err;
    }
  }
}

/** Times read back from the server are plain Dates; written back as such they are rejected. */
function asMicroTimes(spec: V1LeaseSpec): void {
  if (spec.acquireTime) spec.acquireTime = new V1MicroTime(spec.acquireTime);
  if (spec.renewTime) spec.renewTime = new V1MicroTime(spec.renewTime);
}
