// The connector allow-list: what each entry allows, and the ways around it that must not work
// (`..`, symlinks, PATH lookups, a tag where a digest is allowed). A relative entry reads as an
// image repository (`bin/x` is a valid one), so it never allows a program.
import { chmod, mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllowListLauncher, ConnectorAllowList, type Judgement } from '../../runner/launch/allow-list.js';
import { loadConfig, parseAllowedConnectors } from '../../shared/config.js';
import type { ConnectorDefinition } from '../../shared/connections.js';
import { ConnectorError } from '../../shared/errors.js';
import type { ConnectorLauncher, ConnectorRun } from '../../shared/ports/connector-launcher.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const OTHER_DIGEST = `sha256:${'b'.repeat(64)}`;

const judge = (setting: string, definition: Omit<ConnectorDefinition, 'config'>): Promise<Judgement> => new ConnectorAllowList(setting).judge({ config: {}, ...definition }, 'source');
const allowed = async (setting: string, definition: Omit<ConnectorDefinition, 'config'>) => (await judge(setting, definition)).allowed;

describe('the TIDEPOOL_ALLOWED_CONNECTORS setting', () => {
  it('reads programs, directories, repositories and digests, comma-separated', () => {
    expect(parseAllowedConnectors(` /opt/c/source , /var/cache/tidepool/venvs/,airbyte/source-faker,127.0.0.1:5005/t/app@${DIGEST},repo:1.0@${DIGEST}`)).toEqual([
      { kind: 'program', path: '/opt/c/source' },
      { kind: 'directory', path: '/var/cache/tidepool/venvs/' },
      { kind: 'repository', repository: 'airbyte/source-faker' },
      { kind: 'digest', repository: '127.0.0.1:5005/t/app', digest: DIGEST },
      { kind: 'digest', repository: 'repo', digest: DIGEST },
    ]);
    expect(loadConfig({}).allowedConnectors).toBe('');
  });

  it('refuses at start an image by tag, a relative path, `..`, and what is neither', () => {
    const message = (value: string) => {
      try {
        loadConfig({ TIDEPOOL_ALLOWED_CONNECTORS: value });
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(message('airbyte/source-faker:6.2.0')).toContain('an image by tag');
    expect(message('./bin/connector')).toContain('TIDEPOOL_ALLOWED_CONNECTORS: ./bin/connector: neither an absolute path nor an image repository');
    expect(message('/opt/venvs/../../bin/')).toContain('a path without . or .. parts');
    expect(message('Not An Image')).toContain('neither an absolute path nor an image repository');
  });
});

describe('images', () => {
  it('a repository allows any tag or digest of it, Docker Hub names read as Docker reads them', async () => {
    expect(await allowed('airbyte/source-faker', { image: 'airbyte/source-faker:6.2.0' })).toBe(true);
    expect(await allowed('airbyte/source-faker', { image: `docker.io/airbyte/source-faker:6.2.0@${DIGEST}` })).toBe(true);
    expect(await allowed('postgres', { image: 'docker.io/library/postgres:16' })).toBe(true);
    expect(await allowed('airbyte/source-faker', { image: 'airbyte/source-faker-evil:1' })).toBe(false);
    expect(await allowed('airbyte/source-faker', { image: 'evil.example/airbyte/source-faker:1' })).toBe(false);
    expect(await allowed('127.0.0.1:5005/t/app', { image: '127.0.0.1:5005/t/app:stable' })).toBe(true);
  });

  it('a digest allows that build only, under any tag', async () => {
    expect(await allowed(`airbyte/source-faker@${DIGEST}`, { image: `airbyte/source-faker:6.2.0@${DIGEST}` })).toBe(true);
    expect(await allowed(`airbyte/source-faker@${DIGEST}`, { image: `airbyte/source-faker@${OTHER_DIGEST}` })).toBe(false);
    expect(await allowed(`airbyte/source-faker@${DIGEST}`, { image: 'airbyte/source-faker:6.2.0' })).toBe(false);
    expect(await allowed(`airbyte/source-faker@${DIGEST}`, { image: `other/app@${DIGEST}` })).toBe(false);
  });

  it('an image that is not a valid reference is refused, whatever its start looks like', async () => {
    expect(await allowed('airbyte/source-faker', { image: 'airbyte/source-faker:1 --privileged' })).toBe(false);
    expect(await allowed('airbyte/source-faker', { image: '--privileged' })).toBe(false);
  });

  it('the reference connectors are always allowed; nothing else is by default', async () => {
    expect(await allowed('', { connector: 'source-faker' })).toBe(true);
    expect(await allowed('', { image: 'tidepool/source-faker:0.1.0' })).toBe(false);
    expect(await judge('', { command: ['/bin/sh', '-c', 'id'] })).toMatchObject({ allowed: false, refusal: expect.stringMatching(/^connector not allowed: source command \/bin\/sh/) as string });
  });
});

describe('commands', () => {
  let dir: string;
  let allowedDir: string;
  let program: string;
  beforeAll(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'tidepool-allow-list-')));
    allowedDir = join(dir, 'venvs');
    await mkdir(join(allowedDir, 'faker', 'bin'), { recursive: true });
    program = join(allowedDir, 'faker', 'bin', 'source-faker');
    await writeFile(program, '#!/bin/sh\nexit 0\n');
    await chmod(program, 0o755);
    await writeFile(join(dir, 'outside'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    // A link inside the allowed directory to a program outside it, and a link to the directory.
    await symlink('/bin/sh', join(allowedDir, 'sh'));
    await symlink(allowedDir, join(dir, 'venvs-link'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('a program by its path; a directory allows what is under it, at any depth', async () => {
    expect(await judge(program, { command: [program, '--flag'] })).toEqual({ allowed: true, program });
    expect(await allowed(`${allowedDir}/`, { command: [program] })).toBe(true);
    expect(await allowed(`${join(allowedDir, 'faker')}/`, { command: [program] })).toBe(true);
    expect(await allowed(`${allowedDir}/`, { command: [join(dir, 'outside')] })).toBe(false);
    // A directory named like the allowed one is not under it.
    expect(await allowed(`${allowedDir}/fak/`, { command: [program] })).toBe(false);
    expect(await allowed(program, { command: [join(dir, 'outside')] })).toBe(false);
  });

  it('`..` cannot climb out of an allowed directory', async () => {
    const climbing = `${allowedDir}/faker/../../outside`;
    expect(await allowed(`${allowedDir}/`, { command: [climbing] })).toBe(false);
    expect(await allowed(`${allowedDir}/`, { command: [`${allowedDir}/${'../'.repeat(20)}bin/sh`] })).toBe(false);
  });

  it('symlinks count where they point: out of the directory is refused, a link to an allowed program or directory is allowed', async () => {
    expect(await judge(`${allowedDir}/`, { command: [join(allowedDir, 'sh'), '-c', 'id'] })).toMatchObject({ allowed: false, refusal: expect.stringContaining(`(${await realpath('/bin/sh')})`) as string });
    expect(await allowed(`${allowedDir}/`, { command: [join(dir, 'venvs-link', 'faker', 'bin', 'source-faker')] })).toBe(true);
    // An entry that is itself a link allows its target (/bin/sh → /usr/bin/dash is the same program).
    expect(await allowed(`${join(dir, 'venvs-link')}/`, { command: [program] })).toBe(true);
  });

  it('a bare name is judged by the program PATH finds, with the connector\'s own PATH', async () => {
    const env = { PATH: join(allowedDir, 'faker', 'bin') };
    expect(await judge(program, { command: ['source-faker'], env })).toEqual({ allowed: true, program });
    expect(await allowed(`${allowedDir}/`, { command: ['sh'], env: { PATH: '/usr/bin:/bin' } })).toBe(false);
    expect(await allowed('/bin/sh', { command: ['sh'], env: { PATH: '/usr/bin:/bin' } })).toBe(true);
    // A PATH that puts an outside directory first finds the outside program, which is refused.
    await writeFile(join(dir, 'source-faker'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    expect(await allowed(program, { command: ['source-faker'], env: { PATH: `${dir}:${env.PATH}` } })).toBe(false);
  });

  it('a relative path is judged from the working directory, as the launcher resolves it', async () => {
    const previous = process.cwd();
    process.chdir(join(allowedDir, 'faker'));
    try {
      expect(await judge(`${allowedDir}/`, { command: ['./bin/source-faker'] })).toMatchObject({ allowed: true, program: join(allowedDir, 'faker', 'bin', 'source-faker') });
      expect(await allowed(`${allowedDir}/`, { command: ['../../outside'] })).toBe(false);
    } finally {
      process.chdir(previous);
    }
  });

  it('a program that is not there: refused when its path is not allowed, else reported missing', async () => {
    expect(await judge(`${allowedDir}/`, { command: [join(allowedDir, 'nope')] })).toEqual({ allowed: false, missing: `${join(allowedDir, 'nope')}: no such file` });
    expect(await judge(`${allowedDir}/`, { command: [join(dir, 'nope')] })).toMatchObject({ allowed: false, refusal: expect.stringContaining('connector not allowed') as string });
    expect(await judge(`${allowedDir}/`, { command: ['no-such-program'], env: { PATH: '/usr/bin' } })).toEqual({ allowed: false, missing: '"no-such-program" was not found in PATH (/usr/bin)' });
  });
});

describe('AllowListLauncher', () => {
  const started: ConnectorRun[] = [];
  const inner: ConnectorLauncher = {
    kind: 'fake',
    start: (run) => {
      started.push(run);
      return Promise.resolve({ stdin: new Writable(), stdout: Readable.from([]), stderr: Readable.from([]), exit: Promise.resolve({ code: 0, signal: null }), kill: () => undefined });
    },
  };
  const run = (connector: Omit<ConnectorDefinition, 'config'>): ConnectorRun => ({ runId: 'r', role: 'destination', connector: { config: {}, ...connector }, command: 'write', files: {} });

  it('refuses before the inner launcher is reached, as a permanent config_error naming the role and no argument', async () => {
    const launcher = new AllowListLauncher(inner, new ConnectorAllowList(''));
    const err = await launcher.start(run({ command: ['/bin/sh', '-c', 'echo password=hunter2'] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectorError);
    expect(err).toMatchObject({ retryable: false, type: 'config_error', origin: 'destination' });
    expect((err as Error).message).toMatch(/^connector not allowed: destination command \/bin\/sh /);
    expect((err as Error).message).not.toContain('hunter2');
    expect(started).toEqual([]);
  });

  it('hands on an allowed command as the path it resolved to', async () => {
    const launcher = new AllowListLauncher(inner, new ConnectorAllowList('/bin/sh'));
    expect(launcher.kind).toBe('fake');
    await launcher.start(run({ command: ['sh', '-c', 'cat'], env: { PATH: '/bin' } }));
    expect(started.at(-1)?.connector.command).toEqual(['/bin/sh', '-c', 'cat']);
    await launcher.start(run({ connector: 'destination-jsonl' }));
    expect(started.at(-1)?.connector).toEqual({ connector: 'destination-jsonl', config: {} });
  });
});
