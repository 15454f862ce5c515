// Port: how the runner starts a connector. Adapters: local child process
// (runner/launch/local-process.ts), `docker run -i`, a Kubernetes pod. Whatever runs the connector,
// the runner sees the same three byte streams and an exit.
import type { Readable, Writable } from 'node:stream';
import type { ConnectorDefinition } from '../connections.js';

export type ProtocolCommand = 'spec' | 'check' | 'discover' | 'read' | 'write';

export interface ConnectorRun {
  /** Unique per invocation, e.g. `<syncId>-a1-source`; names temp dirs, containers, pods. */
  runId: string;
  role: 'source' | 'destination';
  connector: ConnectorDefinition;
  command: ProtocolCommand;
  /** JSON documents handed to the connector as files: --config, --catalog, --state. */
  files: { config?: unknown; catalog?: unknown; state?: unknown };
}

export interface ConnectorExit {
  /** Exit code; null when the process was ended by a signal. */
  code: number | null;
  signal: string | null;
  /** What the platform says about the ending (OOMKilled, Evicted, DeadlineExceeded...). */
  reason?: string;
  /**
   * The connector never ran (its image could not be pulled, its command not found): `reason`
   * says why. A permanent configuration error, unlike an exit. Launchers that can tell before
   * returning from start() throw a config_error ConnectorError there instead.
   */
  notStarted?: boolean;
  /**
   * The exact image that ran, as the platform resolved it (a repo@sha256 digest, or the image
   * id): a tag says which build was meant, this says which one ran.
   */
  image?: string;
}

export interface ConnectorProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Resolves once the connector ended and its files are removed. Never rejects. */
  readonly exit: Promise<ConnectorExit>;
  /** Ends the connector (and anything it started). Safe to call more than once, or after exit. */
  kill(signal?: NodeJS.Signals): void;
  /**
   * When the platform reached each step of starting the connector (epoch ms), filled in as it
   * happens: where a slow start went. A launcher that cannot tell leaves a step out.
   */
  readonly startup?: ConnectorStartup;
}

export interface ConnectorStartup {
  /** start() was called. */
  readonly launchedAt: number;
  /** Kubernetes: the pod was bound to a node. */
  scheduledAt?: number;
  /** The connector's process (container) was running. */
  startedAt?: number;
  /** The connector's streams reached the runner (sidecars connected). */
  connectedAt?: number;
}

export interface ConnectorLauncher {
  readonly kind: string;
  start(run: ConnectorRun): Promise<ConnectorProcess>;
}
