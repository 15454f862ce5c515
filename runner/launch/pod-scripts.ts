// The shell one-liners a connector pod runs. Kept here, apart from the pod spec, so a test can
// run the very same commands on the host (named pipes and socat, no cluster) and check the
// hello protocol and EOF propagation end to end.
//
// Environment each script expects: TIDEPOOL_RUNNER_HOST, TIDEPOOL_RUNNER_PORT, TIDEPOOL_TOKEN,
// and PIPES (the shared directory of named pipes).

/**
 * Bytes socat moves per read/write (its default is 8 KiB). A named pipe holds 64 KiB, so this
 * takes a full pipe in one read and hands it to the socket in one write. Measured on the host,
 * 2 GiB pipe → socat → TCP: `cat | socat` (the old chain) 0.33 GiB/s and ~7 CPU-s of system
 * time, socat alone with 8 KiB 0.3 GiB/s / ~4.2 s, 64 KiB 0.56-0.66 GiB/s / ~2.1 s, 1 MiB no
 * better (0.55 GiB/s / ~2.5 s: a read never returns more than the pipe holds).
 */
export const COPY_BUFFER_BYTES = 64 * 1024;

/**
 * Main container: the connector's own entrypoint (Airbyte images name it in
 * AIRBYTE_ENTRYPOINT) with its stdio on the pipes. A source reads nothing: its stdin is
 * /dev/null, so it never waits for a writer. The sidecar makes the pipes as its first step and
 * the kubelet starts it just before this container, so the wait is a guard that almost never
 * loops: a redirection to a pipe not made yet would create a plain file.
 */
export function connectorScript(readsStdin: boolean): string {
  const stdin = readsStdin ? '"$PIPES/stdin"' : '/dev/null';
  return `until [ -p "$PIPES/stderr" ]; do sleep 1; done; eval "exec $AIRBYTE_ENTRYPOINT \\"\\$@\\"" < ${stdin} > "$PIPES/stdout" 2> "$PIPES/stderr"`;
}

const CONNECT = 'TCP:"$TIDEPOOL_RUNNER_HOST":"$TIDEPOOL_RUNNER_PORT",connect-timeout=10,retry=30,interval=1';
// Double quotes only: these scripts are put in single quotes below.
const hello = (stream: string) => `printf "TIDEPOOL/1 %s ${stream}\\n" "$TIDEPOOL_TOKEN"`;

// Each stream is one process once connected. socat dials the runner and, with `nofork`, execs a
// shell on the socket itself (stdin and stdout are the connection): the shell says hello and
// execs a second socat that copies between the named pipe and that socket. So no process sits
// between the pipe and the socket but the copier, and the copier has no address to parse but a
// file. The shell's commands reach socat by name (an exported variable): socat's address parser
// splits on quotes, colons and commas, so no command is written into its address.

/** Pipe → connection, for stdout and stderr (STREAM). EOF of the pipe ends the copy: FIN. */
const SEND = `${hello('$STREAM')}; exec socat -u -b ${COPY_BUFFER_BYTES} OPEN:"$PIPES/$STREAM" STDOUT`;
/**
 * Connection → pipe, for stdin. The runner's FIN ends the copy, which closes the pipe: the
 * connector reads EOF. Nothing is sent after the hello; the runner ignores it anyway.
 */
const RECEIVE = `${hello('stdin')}; exec socat -u -b ${COPY_BUFFER_BYTES} STDIN OPEN:"$PIPES/stdin"`;

const dial = (script: 'TIDEPOOL_SEND' | 'TIDEPOOL_RECEIVE') => `socat ${CONNECT} SYSTEM:'eval "$${script}"',nofork`;

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

/**
 * The pod's one sidecar: makes the named pipes, carries stdout and stderr (and stdin for a
 * destination) to the runner, one connection each, and runs the heartbeat. It is listed before
 * the connector, so the kubelet starts it first, in the same pass.
 *
 * It ends by itself once the connector's stdout and stderr have been delivered (their pipes'
 * EOF: the connector exited): the pod then completes with no container left to kill, and its
 * phase follows the connector's exit code. A SIGTERM (the pod deleted with a grace period, or
 * past its deadline) still lets the copies finish what they read.
 */
export function sidecarScript(readsStdin: boolean): string {
  const pipes = [...(readsStdin ? ['stdin'] : []), 'stdout', 'stderr'].map((p) => `"$PIPES/${p}"`).join(' ');
  return [
    // stderr last: the connector waits for it.
    `mkfifo -m 0600 ${pipes} || exit 1`,
    `export TIDEPOOL_SEND='${SEND}'${readsStdin ? ` TIDEPOOL_RECEIVE='${RECEIVE}'` : ''}`,
    `STREAM=stdout ${dial('TIDEPOOL_SEND')} & out=$!`,
    `STREAM=stderr ${dial('TIDEPOOL_SEND')} & err=$!`,
    ...(readsStdin ? [`${dial('TIDEPOOL_RECEIVE')} &`] : []),
    `( ${HEARTBEAT_SCRIPT}\n) & beat=$!`,
    `trap 'kill $beat 2>/dev/null; wait $out $err; exit 0' TERM`,
    // stdin needs no wait: its copy ends with the runner's FIN or the connector's exit.
    'wait $out $err',
    'kill $beat 2>/dev/null',
    'exit 0',
  ].join('\n');
}

/** Where bash's /dev/tcp dials the runner. */
const RUNNER_TCP = '/dev/tcp/$TIDEPOOL_RUNNER_HOST/$TIDEPOOL_RUNNER_PORT';

/**
 * Heartbeat of a pod with no sidecar, in bash alone (a connector image has no socat): the same
 * hello and "ok" as HEARTBEAT_SCRIPT, the same three misses before it ends every process it can
 * see. `timeout` (coreutils) bounds a connect that hangs on a runner whose address went dark;
 * without it a miss takes as long as the kernel's connect does.
 */
export const DIRECT_HEARTBEAT_SCRIPT = [
  'misses=0',
  'limit=; command -v timeout >/dev/null 2>&1 && limit="timeout 10"',
  'while :; do',
  `  if $limit bash -c 'exec 6<>"$0" && printf "TIDEPOOL/1 %s heartbeat\\n" "$TIDEPOOL_TOKEN" >&6 && read -r -t 10 answer <&6 && [ "$answer" = ok ]' "${RUNNER_TCP}" 2>/dev/null; then misses=0; else misses=$((misses+1)); fi`,
  '  if [ "$misses" -ge 3 ]; then echo "runner $TIDEPOOL_RUNNER_HOST:$TIDEPOOL_RUNNER_PORT stopped answering: ending the pod" >&2; kill -9 -1; exit 1; fi',
  '  sleep 5',
  'done',
].join('\n');

/**
 * Direct streams: the pod's one container, run by bash, dials the runner once per stream with
 * bash's /dev/tcp, says each hello, and starts the connector's entrypoint with those sockets as
 * its stdin, stdout and stderr. The connector then writes into the connection itself: no named
 * pipe, no sidecar, no copy on the pod's side, and one container for the kubelet to create,
 * start, report and stop. EOF travels as with the sidecar: the shell keeps no copy of the
 * sockets, so the connector's exit closes them (FIN), and the runner's FIN on stdin is the
 * connector's EOF.
 *
 * The shell stays as the connector's parent to report its exit code on an `exit` connection the
 * moment it ends (stream-server.ts): the kubelet would say so only at its next status pass, up
 * to a second later. It passes SIGTERM on (the pod deleted with a grace period) and exits with
 * the connector's status, so the container's exit code is the connector's, 128 + n for signal n.
 *
 * The heartbeat is started first, with none of the stream sockets open (it must not hold one
 * open past the connector's exit), and detached from the shell. The connector does not get the
 * token in its environment.
 *
 * Needs bash and coreutils' `sleep` in the connector's image, which Debian-, Ubuntu- and
 * RHEL-based images (Airbyte's own among them) have; an image without bash fails to start and
 * the run says so (kubernetes-pod.ts).
 */
export function directScript(readsStdin: boolean): string {
  const stdin = readsStdin ? '<&5' : '</dev/null';
  return [
    `( ( ${DIRECT_HEARTBEAT_SCRIPT}\n) & )`,
    'dial() {',
    '  tries=0',
    // The braces keep the /dev/null for the attempt's own error, not for the shell after it;
    // the address is expanded by eval as a word, never parsed as shell text.
    `  until { eval "exec $1<>${RUNNER_TCP.replaceAll('$', '\\$')}"; } 2>/dev/null; do`,
    '    tries=$((tries+1))',
    '    if [ "$tries" -ge 30 ]; then echo "cannot reach the runner at $TIDEPOOL_RUNNER_HOST:$TIDEPOOL_RUNNER_PORT for $2" >&2; exit 1; fi',
    '    sleep 1',
    '  done',
    `  printf 'TIDEPOOL/1 %s %s\\n' "$TIDEPOOL_TOKEN" "$2" >&"$1"`,
    '}',
    'dial 3 stdout',
    'dial 4 stderr',
    ...(readsStdin ? ['dial 5 stdin'] : []),
    `( unset TIDEPOOL_TOKEN; eval "exec $AIRBYTE_ENTRYPOINT \\"\\$@\\"" ) ${stdin} >&3 2>&4 3>&- 4>&-${readsStdin ? ' 5>&-' : ''} &`,
    'pid=$!',
    `exec 3>&- 4>&-${readsStdin ? ' 5>&-' : ''}`,
    "trap 'kill -TERM $pid 2>/dev/null' TERM",
    // A trapped signal cuts `wait` short while the connector still runs: wait again.
    'code=',
    'while [ -z "$code" ]; do wait "$pid"; c=$?; kill -0 "$pid" 2>/dev/null || code=$c; done',
    `{ exec 6<>${RUNNER_TCP} && printf 'TIDEPOOL/1 %s exit\\n%s\\n' "$TIDEPOOL_TOKEN" "$code" >&6; } 2>/dev/null`,
    'exit "$code"',
  ].join('\n');
}
