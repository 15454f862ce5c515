// The shell one-liners a connector pod runs. Kept here, apart from the pod spec, so a test can
// run the very same commands on the host (named pipes and socat, no cluster) and check the
// hello protocol and EOF propagation end to end.
//
// Environment each script expects: TIDEPOOL_RUNNER_HOST, TIDEPOOL_RUNNER_PORT, TIDEPOOL_TOKEN,
// and PIPES (the shared directory of named pipes).

/** Init container: the three named pipes, writable by the (non-root) containers. */
export const MAKE_PIPES = 'mkfifo -m 0600 "$PIPES/stdin" "$PIPES/stdout" "$PIPES/stderr"';

/**
 * Main container: the connector's own entrypoint (Airbyte images name it in
 * AIRBYTE_ENTRYPOINT) with its stdio on the pipes. A source reads nothing: its stdin is
 * /dev/null, so it never waits for a writer.
 */
export function connectorScript(readsStdin: boolean): string {
  const stdin = readsStdin ? '"$PIPES/stdin"' : '/dev/null';
  return `eval "exec $AIRBYTE_ENTRYPOINT \\"\\$@\\"" < ${stdin} > "$PIPES/stdout" 2> "$PIPES/stderr"`;
}

const CONNECT = 'TCP:"$TIDEPOOL_RUNNER_HOST":"$TIDEPOOL_RUNNER_PORT",connect-timeout=10,retry=30,interval=1';
const hello = (stream: string) => `printf 'TIDEPOOL/1 %s ${stream}\\n' "$TIDEPOOL_TOKEN"`;

// No shell command is handed to socat itself (its address parser splits on quotes, colons and
// commas): the hello and the copy are a plain shell pipeline into socat's stdio.

/**
 * Sidecar: pipe → runner (stdout, stderr). The hello, then the pipe's bytes; when the connector
 * exits, cat ends, socat sends FIN (-u: one direction only) and exits.
 */
export function outputSidecarScript(stream: 'stdout' | 'stderr'): string {
  return `{ ${hello(stream)}; exec cat "$PIPES/${stream}"; } | exec socat -u - ${CONNECT}`;
}

/**
 * Sidecar: runner → pipe (stdin). The hello goes up; the runner's bytes come down into the pipe.
 * -t is long because the hello side ends at once and socat must keep copying the other way
 * until the runner's FIN, which ends socat and closes the pipe: the connector reads EOF.
 */
export function inputSidecarScript(): string {
  return `${hello('stdin')} | socat -t 86400 - ${CONNECT} > "$PIPES/stdin"`;
}

/**
 * Sidecar: ends the pod when its runner stops answering. Every 5 s it says hello on the
 * heartbeat stream; the runner answers "ok" while the run is registered. After 3 misses it
 * kills every process it can see — the pod shares one process namespace and all containers
 * run as the same user — so the connector cannot outlive a dead runner.
 */
export const HEARTBEAT_SCRIPT = [
  'misses=0',
  'while :; do',
  `  if printf 'TIDEPOOL/1 %s heartbeat\\n' "$TIDEPOOL_TOKEN" | socat -t 5 -T 10 - TCP:$TIDEPOOL_RUNNER_HOST:$TIDEPOOL_RUNNER_PORT,connect-timeout=5 2>/dev/null | grep -q '^ok'; then misses=0; else misses=$((misses+1)); fi`,
  '  if [ "$misses" -ge 3 ]; then echo "runner $TIDEPOOL_RUNNER_HOST:$TIDEPOOL_RUNNER_PORT stopped answering: ending the pod" >&2; kill -9 -1; exit 1; fi',
  '  sleep 5',
  'done',
].join('\n');
