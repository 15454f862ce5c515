// The Airbyte Protocol (https://docs.airbyte.com/understanding-airbyte/airbyte-protocol):
// connectors are programs that speak one JSON message per line on stdout. These are the
// message shapes tidepool and its reference connectors use. Field names are the protocol's
// own (snake_case), so existing Airbyte connectors run unchanged.

export type SyncMode = 'full_refresh' | 'incremental';
export type DestinationSyncMode = 'overwrite' | 'append' | 'append_dedup';

export interface StreamDescriptor {
  name: string;
  namespace?: string;
}

export interface AirbyteStream {
  name: string;
  namespace?: string;
  json_schema: Record<string, unknown>;
  supported_sync_modes: SyncMode[];
  source_defined_cursor?: boolean;
  default_cursor_field?: string[];
  source_defined_primary_key?: string[][];
}

export interface AirbyteCatalog {
  streams: AirbyteStream[];
}

export interface ConfiguredAirbyteStream {
  stream: AirbyteStream;
  sync_mode: SyncMode;
  destination_sync_mode: DestinationSyncMode;
  cursor_field?: string[];
  primary_key?: string[][];
}

export interface ConfiguredAirbyteCatalog {
  streams: ConfiguredAirbyteStream[];
}

export interface AirbyteRecordMessage {
  stream: string;
  namespace?: string;
  data: Record<string, unknown>;
  emitted_at: number;
}

export interface AirbyteStreamState {
  stream_descriptor: StreamDescriptor;
  stream_state?: Record<string, unknown>;
}

export interface AirbyteGlobalState {
  shared_state?: Record<string, unknown>;
  stream_states: AirbyteStreamState[];
}

export type AirbyteStateType = 'STREAM' | 'GLOBAL' | 'LEGACY';

export interface AirbyteStateMessage {
  type?: AirbyteStateType;
  stream?: AirbyteStreamState;
  global?: AirbyteGlobalState;
  data?: Record<string, unknown>;
  sourceStats?: { recordCount?: number };
  destinationStats?: { recordCount?: number };
}

export type LogLevel = 'FATAL' | 'ERROR' | 'WARN' | 'INFO' | 'DEBUG' | 'TRACE';

export interface AirbyteLogMessage {
  level: LogLevel;
  message: string;
  stack_trace?: string;
}

export type FailureType = 'system_error' | 'config_error' | 'transient_error';

export interface AirbyteErrorTraceMessage {
  message: string;
  internal_message?: string;
  stack_trace?: string;
  failure_type?: FailureType;
}

export type AirbyteStreamStatus = 'STARTED' | 'RUNNING' | 'COMPLETE' | 'INCOMPLETE';

/**
 * Where a stream stands. tidepool's runner sends STARTED for every configured stream before
 * the first record and COMPLETE only after the source succeeded, so a destination can tell a
 * finished input from one cut short by a dead orchestrator (both end in EOF).
 */
export interface AirbyteStreamStatusTraceMessage {
  stream_descriptor: StreamDescriptor;
  status: AirbyteStreamStatus;
}

export interface AirbyteTraceMessage {
  type: 'ERROR' | 'ESTIMATE' | 'STREAM_STATUS' | 'ANALYTICS';
  emitted_at: number;
  error?: AirbyteErrorTraceMessage;
  stream_status?: AirbyteStreamStatusTraceMessage;
  [key: string]: unknown;
}

export interface ConnectorSpecification {
  documentationUrl?: string;
  connectionSpecification: Record<string, unknown>;
  supportsIncremental?: boolean;
  supported_destination_sync_modes?: DestinationSyncMode[];
}

export interface AirbyteConnectionStatus {
  status: 'SUCCEEDED' | 'FAILED';
  message?: string;
}

export type AirbyteMessage =
  | { type: 'RECORD'; record: AirbyteRecordMessage }
  | { type: 'STATE'; state: AirbyteStateMessage }
  | { type: 'LOG'; log: AirbyteLogMessage }
  | { type: 'TRACE'; trace: AirbyteTraceMessage }
  | { type: 'CATALOG'; catalog: AirbyteCatalog }
  | { type: 'SPEC'; spec: ConnectorSpecification }
  | { type: 'CONNECTION_STATUS'; connectionStatus: AirbyteConnectionStatus }
  | { type: 'CONTROL'; control: Record<string, unknown> };

export type AirbyteMessageType = AirbyteMessage['type'];

export const MESSAGE_TYPES: ReadonlySet<string> = new Set<AirbyteMessageType>([
  'RECORD',
  'STATE',
  'LOG',
  'TRACE',
  'CATALOG',
  'SPEC',
  'CONNECTION_STATUS',
  'CONTROL',
]);

/** Key under which a STATE message is kept in the committed state of a connection. */
export function stateKey(state: AirbyteStateMessage): string {
  switch (state.type) {
    case 'STREAM': {
      const d = state.stream?.stream_descriptor;
      return `stream:${d?.namespace ?? ''}:${d?.name ?? ''}`;
    }
    case 'GLOBAL':
      return 'global';
    default:
      return 'legacy';
  }
}

/**
 * Merge a checkpoint into a connection's committed state. The committed state is an array of
 * STATE messages, the form a source takes with `--state`: one per stream for per-stream state,
 * or a single GLOBAL or LEGACY message, which replaces everything.
 */
export function mergeState(
  committed: readonly AirbyteStateMessage[],
  checkpoint: AirbyteStateMessage,
): AirbyteStateMessage[] {
  const clean: AirbyteStateMessage = { ...checkpoint };
  delete clean.sourceStats;
  delete clean.destinationStats;
  if (clean.type !== 'STREAM') return [clean];
  const key = stateKey(clean);
  const rest = committed.filter((s) => s.type === 'STREAM' && stateKey(s) !== key);
  return [...rest, clean];
}
