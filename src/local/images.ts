import { createHash } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile, chown } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import path from 'node:path';
import type Docker from 'dockerode';
import { RUNTIMES, type RuntimeName } from '../contracts/runtimes.ts';
import { PROJECT_ROOT } from '../config/load.ts';
import type { Logger } from '../log.ts';

const RUNTIMES_DIR = path.join(PROJECT_ROOT, 'runtimes');
const NOBODY = 65534;

export interface ImageBuildOptions {
  stateDir: string;
  mirror?: string;
  suite?: string;
}

function packagesOf(runtime: RuntimeName): string[] {
  return readFileSync(path.join(RUNTIMES_DIR, runtime, 'packages.txt'), 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
}

/** A digest of the root filesystem's recipe (Debian suite + packages): when it changes, debootstrap runs again. */
export function baseDigest(runtime: RuntimeName, suite: string): string {
  const hash = createHash('sha256');
  hash.update(`base-v1|${runtime}|${suite}|`);
  hash.update(readFileSync(path.join(RUNTIMES_DIR, runtime, 'packages.txt')));
  return hash.digest('hex').slice(0, 16);
}

/** A digest of everything that goes into a runtime image: base + runner. */
export function recipeDigest(runtime: RuntimeName, suite: string): string {
  const hash = createHash('sha256');
  hash.update(`image-v1|${baseDigest(runtime, suite)}|`);
  hash.update(readFileSync(path.join(RUNTIMES_DIR, 'runner/runner.py')));
  return hash.digest('hex').slice(0, 16);
}

function hostSuite(): string {
  try {
    const match = /VERSION_CODENAME=(\w+)/.exec(readFileSync('/etc/os-release', 'utf8'));
    return match?.[1] ?? 'bookworm';
  } catch {
    return 'bookworm';
  }
}

function run(cmd: string, args: string[], log: Logger): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (chunk: Buffer) => (tail = (tail + chunk.toString()).slice(-4000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) => reject(new Error(`${cmd} could not start: ${err.message}`)));
    child.on('close', (code) => {
      if (code === 0) return resolve();
      log.error({ cmd, args, output: tail }, 'image build step failed');
      reject(new Error(`${cmd} ${args.slice(0, 3).join(' ')} exited with ${code}: ${tail.split('\n').slice(-5).join(' | ')}`));
    });
  });
}

async function imageDigest(docker: Docker, image: string): Promise<string | null> {
  try {
    const info = await docker.getImage(image).inspect();
    return info.Config?.Labels?.['nanogrid.recipe'] ?? null;
  } catch {
    return null;
  }
}

async function imageExists(docker: Docker, image: string): Promise<boolean> {
  return docker.getImage(image).inspect().then(() => true, () => false);
}

/**
 * The runtime's base image, offline: a Debian root filesystem from Debian's packages
 * (debootstrap), loaded through the engine's import API. The root filesystem is also kept as a
 * tarball under the cache directory, so a fresh Docker engine re-imports it in seconds.
 */
async function ensureBase(docker: Docker, runtime: RuntimeName, suite: string, options: ImageBuildOptions, log: Logger): Promise<string> {
  const digest = baseDigest(runtime, suite);
  const base = `nanogrid-base-${runtime}:${digest}`;
  if (await imageExists(docker, base)) return base;
  const cacheDir = path.join(options.stateDir, 'images');
  const tarball = path.join(cacheDir, `${runtime}-base-${digest}.tar`);
  await mkdir(cacheDir, { recursive: true });
  if (!existsSync(tarball)) {
    const rootfs = path.join(cacheDir, `rootfs-${runtime}`);
    await rm(rootfs, { recursive: true, force: true });
    const started = Date.now();
    log.info({ runtime, suite }, 'building runtime root filesystem with debootstrap (a minute or two, once)');
    await run('debootstrap', ['--variant=minbase', `--include=${packagesOf(runtime).join(',')}`, suite, rootfs, options.mirror ?? 'http://deb.debian.org/debian'], log);
    // Nothing the function needs: package caches, docs, apt lists.
    for (const dir of ['var/cache/apt/archives', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man', 'usr/share/locale', 'usr/share/info']) {
      await rm(path.join(rootfs, dir), { recursive: true, force: true });
    }
    await mkdir(path.join(rootfs, 'workspace'), { recursive: true });
    await chown(path.join(rootfs, 'workspace'), NOBODY, NOBODY);
    await run('tar', ['-C', rootfs, '--numeric-owner', '-cf', `${tarball}.partial`, '.'], log);
    await rename(`${tarball}.partial`, tarball);
    await rm(rootfs, { recursive: true, force: true });
    log.info({ runtime, seconds: Math.round((Date.now() - started) / 1000) }, 'root filesystem built');
  }
  // Through the engine's API, not the docker CLI: the CLI may not be installed beside dockerd.
  const [repo, tag] = base.split(':') as [string, string];
  const progress = (await docker.importImage(tarball, { repo, tag })) as NodeJS.ReadableStream;
  await new Promise<void>((resolve, reject) => docker.modem.followProgress(progress, (err) => (err ? reject(err) : resolve())));
  return base;
}

/** The runtime image: its base plus the runner, the user and the entry command (no network needed). */
async function buildRuntimeImage(docker: Docker, runtime: RuntimeName, base: string, digest: string): Promise<void> {
  const context = await mkdtemp(path.join(tmpdir(), 'nanogrid-image-'));
  try {
    await writeFile(path.join(context, 'runner.py'), readFileSync(path.join(RUNTIMES_DIR, 'runner/runner.py')));
    await writeFile(
      path.join(context, 'Dockerfile'),
      [
        `FROM ${base}`,
        'COPY runner.py /opt/nanogrid/runner.py',
        'ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8',
        'USER 65534:65534',
        'WORKDIR /workspace',
        'CMD ["python3", "-I", "/opt/nanogrid/runner.py"]',
        `LABEL nanogrid.recipe=${digest} nanogrid.runtime=${runtime}`,
        '',
      ].join('\n'),
    );
    const stream = await docker.buildImage({ context, src: ['Dockerfile', 'runner.py'] }, { t: `${RUNTIMES[runtime].image}:latest`, rm: true, forcerm: true });
    await new Promise<void>((resolve, reject) =>
      docker.modem.followProgress(stream, (err, events: { error?: string }[]) => {
        const failed = err ?? events.find((e) => e.error)?.error;
        return failed ? reject(new Error(`building ${RUNTIMES[runtime].image} failed: ${String(failed)}`)) : resolve();
      }),
    );
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}

/** Makes sure each runtime image exists and matches its recipe; builds what is missing or stale. */
export async function ensureRuntimeImages(docker: Docker, runtimes: RuntimeName[], options: ImageBuildOptions, log: Logger): Promise<void> {
  const suite = options.suite ?? hostSuite();
  for (const runtime of runtimes) {
    const digest = recipeDigest(runtime, suite);
    if ((await imageDigest(docker, RUNTIMES[runtime].image)) === digest) {
      log.debug({ runtime }, 'runtime image is up to date');
      continue;
    }
    const previous = await docker.getImage(RUNTIMES[runtime].image).inspect().then((i) => i.Id, () => null);
    const base = await ensureBase(docker, runtime, suite, options, log);
    await buildRuntimeImage(docker, runtime, base, digest);
    // The stale image is now untagged; drop it unless a container still uses it.
    if (previous) await docker.getImage(previous).remove().catch(() => undefined);
    const got = await imageDigest(docker, RUNTIMES[runtime].image);
    if (got !== digest) throw new Error(`the build of ${RUNTIMES[runtime].image} did not produce the expected image (label ${got})`);
    log.info({ runtime, image: RUNTIMES[runtime].image }, 'runtime image ready');
  }
}
