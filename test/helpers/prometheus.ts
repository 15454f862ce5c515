// Debian's Prometheus for tests: promtool on the shipped rule files, and a real server of the
// test's own (its own config, storage and port) that scrapes tidepool processes. scripts/setup
// installs the package; a test that needs it fails, never skips, when it is missing, since CI
// runs setup first and a skipped check there would pass unnoticed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './ports.js';
import { waitFor } from './services.js';

export const RULES_DIR = 'k8s/prometheus';

/** The path of a binary of Debian's prometheus package, or an error that says how to get it. */
export function prometheusBinary(name: 'prometheus' | 'promtool'): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not in this directory
    }
  }
  throw new Error(`${name} is not installed (not on PATH): run scripts/setup (it installs Debian's prometheus package, which has prometheus and promtool)`);
}

export interface ToolResult {
  status: number | null;
  output: string;
}

/** Runs promtool with `args` in `cwd`; its stdout and stderr together, for the assertion's message. */
export function promtool(args: string[], cwd: string): ToolResult {
  const result = spawnSync(prometheusBinary('promtool'), args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** A scrape job as prometheus.yml has it (static_configs, file_sd_configs, relabeling...). */
export type ScrapeConfig = Record<string, unknown>;

/**
 * The local-mode scrape job of docs/metrics.md ("Monitoring stack") for a scaler whose
 * TIDEPOOL_METRICS_PORT is `port`: the scaler on it, its runners on the next `maxRunners` ports.
 */
export function localScrapeConfig(port: number, maxRunners: number): ScrapeConfig {
  const runners = Array.from({ length: maxRunners }, (_, i) => `127.0.0.1:${port + 1 + i}`);
  return {
    job_name: 'tidepool',
    static_configs: [
      { targets: [`127.0.0.1:${port}`], labels: { component: 'scaler' } },
      { targets: runners, labels: { component: 'runner' } },
    ],
  };
}

export interface PrometheusServer {
  url: string;
  /** GET /api/v1/<path> with `params`; the `data` of a success, or an error with Prometheus's message. */
  api<T>(path: string, params?: Record<string, string>): Promise<T>;
  stop(): Promise<void>;
}

/**
 * Starts `prometheus` on a free loopback port with a temporary storage and a config of
 * `scrapeConfigs` and `ruleFiles` (absolute paths), evaluating and scraping every `intervalSeconds`.
 * Resolves once it answers /-/ready; stop() kills it and removes its directory.
 */
export async function startPrometheus(options: { scrapeConfigs: ScrapeConfig[]; ruleFiles?: string[]; intervalSeconds?: number }): Promise<PrometheusServer> {
  const binary = prometheusBinary('prometheus');
  const dir = await mkdtemp(join(tmpdir(), 'tidepool-prometheus-'));
  const interval = `${options.intervalSeconds ?? 1}s`;
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: options.ruleFiles ?? [],
    scrape_configs: options.scrapeConfigs,
  };
  await writeFile(join(dir, 'prometheus.yml'), stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let log = '';
  const child: ChildProcess = spawn(
    binary,
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr?.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000);
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      'prometheus to be ready',
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}: ${log}`);
        const res = await fetch(`${url}/-/ready`).catch(() => undefined);
        return res?.status === 200 ? true : undefined;
      },
      30_000,
      200,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    stop,
    async api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
      const res = await fetch(`${url}/api/v1/${path}?${new URLSearchParams(params).toString()}`);
      const body = (await res.json()) as { status: string; data: T; error?: string };
      if (body.status !== 'success') throw new Error(`prometheus /api/v1/${path} ${JSON.stringify(params)}: ${body.error ?? res.status}`);
      return body.data;
    },
  };
}
