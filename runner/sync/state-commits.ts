// The step that makes a sync durable. A STATE the destination echoes back means everything
// before it is committed on the destination's side, so tidepool commits it too: merged into
// the connection's state, written only while this runner's lock still holds (the fence is
// checked atomically in the store), one commit after another in the order the destination
// confirmed them. A STATE the source sent and the destination never echoed is never committed:
// after a crash the next sync resumes from the last confirmed one, and nothing is lost.
import { asTidepoolError, LockLostError } from '../../shared/errors.js';
import { mergeState, type AirbyteStateMessage } from '../../shared/protocol.js';
import type { LockHandle } from '../../shared/store/locks.js';
import type { StateStore } from '../../shared/store/state.js';

export class StateCommits {
  private chain: Promise<void> = Promise.resolve();
  private halted = false;
  /** STATE messages the destination echoed. */
  echoed = 0;
  /** Of those, the ones committed. */
  committed = 0;
  /** The connection's state version after the last commit. */
  version: number | undefined;

  constructor(
    private readonly store: Pick<StateStore, 'commit'>,
    private readonly lock: LockHandle,
    private readonly syncId: string,
    /** The state this sync started from (empty for a full refresh). */
    private current: AirbyteStateMessage[],
  ) {}

  private readonly failing = new AbortController();
  /** Aborted, with the error as its reason, when the first commit fails; a lost lock also halts every commit after it. */
  readonly failed: AbortSignal = this.failing.signal;

  /** The state the connectors start from. */
  get state(): AirbyteStateMessage[] {
    return this.current;
  }

  /** A STATE the destination echoed: committed after the ones before it. */
  confirm(checkpoint: AirbyteStateMessage): void {
    this.echoed++;
    this.chain = this.chain.then(async () => {
      if (this.halted) return;
      // Merged even if this commit fails: the destination has it, so a later commit carries it.
      this.current = mergeState(this.current, checkpoint);
      try {
        this.version = await this.store.commit(this.lock, this.current, this.syncId);
        this.committed++;
      } catch (err) {
        const failure = asTidepoolError(err);
        if (failure instanceof LockLostError) this.halt();
        if (!this.failed.aborted) this.failing.abort(failure);
      }
    });
  }

  /** Commits nothing more: another runner owns the connection now. */
  halt(): void {
    this.halted = true;
  }

  /** Resolves once every confirmed STATE is committed or refused. Never rejects. */
  settled(): Promise<void> {
    return this.chain;
  }
}
