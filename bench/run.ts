/**
 * npm run bench [-- --quick] [-- --seconds N] [-- --warm-runs N] [-- --worker-concurrency N]
 *
 * Brings a private stack up (embedded services here, controller and worker as child processes),
 * measures the figures of issue 6 in one run on this machine, prints a table with the targets
 * and writes bench/results.json. Everything it started is stopped at the end, even on error.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { runOnce, uploadPython, type RunOutcome, type RunRequest } from './api.ts';
import { dockerRunYardstick, HELLO_SOURCE } from './dockerRun.ts';
import { clockTicksPerSecond, machineInfo, median, now, percentile, readCpuTicks, readRssBytes, round, sampleMaxRss, toMb } from './measure.ts';
import { checkTargets, CONCURRENCY_LEVELS, formatReport, type BenchResults, type ThroughputLevel } from './report.ts';
import { BENCH_LABEL, startBenchStack, type BenchStack } from './stack.ts';
import { storedZip } from './zip.ts';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const RESULTS_FILE = path.join(BENCH_DIR, 'results.json');
const LOG_DIR = path.join(BENCH_DIR, 'logs');
/** The controller's default wait budget (25 s) plus slack: a sync run that outlasts it is an error. */
const REQUEST_TIMEOUT_MS = 35_000;
const DOCKER_RUNS = 10;
const COLD_RUNS = 5;
/** Runs of the measured function before (c) and (d) count anything. */
const WARM_UP_RUNS = 3;

const USAGE = `usage: npm run bench -- [--quick] [--seconds N] [--warm-runs N] [--worker-concurrency N]
  --seconds N             duration of each throughput level (concurrency 1, 4, 16); default 20
  --warm-runs N           sequential runs of the warm-latency phase; default 200
  --quick                 smoke run: 5 s per level and 50 warm runs (explicit flags still win)
  --worker-concurrency N  NANOGRID_WORKER_CONCURRENCY of the worker; default 16`;

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a whole number from 1, not "${raw}"\n${USAGE}`);
  return value;
}

function parseSettings(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      seconds: { type: 'string' },
      'warm-runs': { type: 'string' },
      'worker-concurrency': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = values.quick === true;
  return {
    quick,
    secondsPerLevel: positiveInt('seconds', values.seconds, quick ? 5 : 20),
    warmRuns: positiveInt('warm-runs', values['warm-runs'], quick ? 50 : 200),
    workerConcurrency: positiveInt('worker-concurrency', values['worker-concurrency'], 16),
  };
}

const progress = (message: string) => console.error(`[bench] ${message}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function emptyResults(settings: ReturnType<typeof parseSettings>, clockTicks: number): BenchResults {
  return {
    machine: machineInfo(null),
    settings: { ...settings, dockerRuns: DOCKER_RUNS, coldRuns: COLD_RUNS, requestTimeoutMs: REQUEST_TIMEOUT_MS, clockTicksPerSecond: clockTicks },
    dockerRunMethod: null,
    dockerRunCommand: null,
    dockerRunMedianMs: null,
    dockerRunErrors: 0,
    coldRunMedianMs: null,
    coldRunColdStart: [],
    coldRunErrors: 0,
    warmRunCount: 0,
    warmP50Ms: null,
    warmP95Ms: null,
    warmP99Ms: null,
    warmErrors: 0,
    warmColdStarts: 0,
    throughputC1RunsPerSec: null,
    throughputC1Errors: 0,
    throughputC4RunsPerSec: null,
    throughputC4Errors: 0,
    throughputC16RunsPerSec: null,
    throughputC16Errors: 0,
    throughput: [],
    cpuMsPerWarmRunController: null,
    cpuMsPerWarmRunWorker: null,
    cpuMsPerWarmRun: null,
    cpuMsPerWarmRunWorkerChildren: null,
    workerRssIdleMb: null,
    workerRssLoadMb: null,
    controllerRssIdleMb: null,
    controllerRssLoadMb: null,
    samples: { dockerRunMs: [], coldRunMs: [], warmMs: [] },
    phaseErrors: [],
    targets: [],
  };
}

const ms = (values: number[]) => values.map((v) => round(v, 1) as number);

/** (a) The runtime image by hand, one container per run. */
async function measureDockerRun(stack: BenchStack, r: BenchResults): Promise<void> {
  const yardstick = dockerRunYardstick(stack.docker, { key: BENCH_LABEL, value: stack.tag });
  r.dockerRunMethod = yardstick.method;
  r.dockerRunCommand = yardstick.command;
  try {
    const samples: number[] = [];
    for (let i = 0; i < DOCKER_RUNS; i++) {
      const sample = await yardstick.run();
      if (sample.ok) samples.push(sample.ms);
      else {
        r.dockerRunErrors++;
        progress(`docker run ${i + 1} failed: ${sample.error}`);
      }
    }
    r.samples.dockerRunMs = ms(samples);
    r.dockerRunMedianMs = round(median(samples));
  } finally {
    yardstick.dispose();
  }
}

/** (b) A new version each time, then one POST /run of it. */
async function measureColdRuns(stack: BenchStack, r: BenchResults): Promise<void> {
  let functionId: string | undefined;
  const samples: number[] = [];
  for (let i = 0; i < COLD_RUNS; i++) {
    const code = `${HELLO_SOURCE}# bench ${stack.tag}: cold version ${i + 1}\n`;
    const uploaded = await uploadPython(stack.url, storedZip({ 'main.py': code }), functionId);
    functionId = uploaded.functionId;
    const outcome = await runOnce(stack.url, { functionId, version: uploaded.version }, REQUEST_TIMEOUT_MS);
    r.coldRunColdStart.push(outcome.coldStart);
    if (outcome.ok) samples.push(outcome.ms);
    else {
      r.coldRunErrors++;
      progress(`cold run ${i + 1} failed: ${outcome.error}`);
    }
  }
  r.samples.coldRunMs = ms(samples);
  r.coldRunMedianMs = round(median(samples));
}

/** (c) + (e) Sequential runs of one function; CPU of controller and worker across them. */
async function measureWarmRuns(stack: BenchStack, request: RunRequest, runs: number, clockTicks: number, r: BenchResults): Promise<void> {
  for (let i = 0; i < WARM_UP_RUNS; i++) await runOnce(stack.url, request, REQUEST_TIMEOUT_MS);
  const before = { controller: readCpuTicks(stack.controllerPid), worker: readCpuTicks(stack.workerPid) };
  const latencies: number[] = [];
  for (let i = 0; i < runs; i++) {
    const outcome = await runOnce(stack.url, request, REQUEST_TIMEOUT_MS);
    if (outcome.ok) latencies.push(outcome.ms);
    else r.warmErrors++;
    if (outcome.coldStart === true) r.warmColdStarts++;
  }
  const after = { controller: readCpuTicks(stack.controllerPid), worker: readCpuTicks(stack.workerPid) };
  const perRun = (ticks: number) => round((ticks * 1000) / clockTicks / runs, 2);
  r.warmRunCount = runs;
  r.samples.warmMs = ms(latencies);
  r.warmP50Ms = round(percentile(latencies, 50));
  r.warmP95Ms = round(percentile(latencies, 95));
  r.warmP99Ms = round(percentile(latencies, 99));
  r.cpuMsPerWarmRunController = perRun(after.controller.self - before.controller.self);
  r.cpuMsPerWarmRunWorker = perRun(after.worker.self - before.worker.self);
  r.cpuMsPerWarmRun = perRun(after.controller.self - before.controller.self + after.worker.self - before.worker.self);
  r.cpuMsPerWarmRunWorkerChildren = perRun(after.worker.children - before.worker.children);
}

/** (d) `concurrency` closed-loop clients for `seconds`; runs started before the deadline all count. */
async function measureThroughput(stack: BenchStack, request: RunRequest, concurrency: number, seconds: number): Promise<ThroughputLevel> {
  const started = now();
  const deadline = started + seconds * 1000;
  const outcomes: RunOutcome[] = [];
  const client = async () => {
    while (now() < deadline) {
      const outcome = await runOnce(stack.url, request, REQUEST_TIMEOUT_MS);
      outcomes.push(outcome);
      if (!outcome.ok) await sleep(50); // a dead endpoint must not turn into a busy loop
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  const elapsed = (now() - started) / 1000;
  const ok = outcomes.filter((o) => o.ok);
  const errorReasons: Record<string, number> = {};
  for (const o of outcomes) if (!o.ok) errorReasons[o.error ?? 'unknown'] = (errorReasons[o.error ?? 'unknown'] ?? 0) + 1;
  return {
    concurrency,
    seconds: round(elapsed, 2) as number,
    runs: ok.length,
    errors: outcomes.length - ok.length,
    runsPerSecond: round(ok.length / elapsed, 2),
    p50Ms: round(percentile(ok.map((o) => o.ms), 50)),
    p95Ms: round(percentile(ok.map((o) => o.ms), 95)),
    errorReasons,
  };
}

async function main(): Promise<number> {
  const settings = parseSettings(process.argv.slice(2));
  const clockTicks = clockTicksPerSecond();
  const r = emptyResults(settings, clockTicks);
  const log = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'warn', name: 'bench' }, pino.destination(2));

  progress(`starting the stack (worker concurrency ${settings.workerConcurrency}; logs in ${path.relative(process.cwd(), LOG_DIR)}/)`);
  let stack: BenchStack;
  try {
    stack = await startBenchStack({ workerConcurrency: settings.workerConcurrency, logDir: LOG_DIR, log });
  } catch (err) {
    console.error(`[bench] the stack did not come up: ${(err as Error).message}`);
    return 1;
  }
  let stopping: Promise<void> | null = null;
  const stop = () => (stopping ??= stack.stop());
  const onSignal = (signal: NodeJS.Signals) => {
    progress(`${signal}: stopping the stack`);
    void stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  /** Runs one phase; a failure is recorded (its figures stay null) and the bench goes on. */
  const phase = async <T>(name: string, body: () => Promise<T>): Promise<T | null> => {
    const dead = stack.dead();
    if (dead) {
      r.phaseErrors.push({ phase: name, message: dead });
      return null;
    }
    progress(name);
    try {
      return await body();
    } catch (err) {
      r.phaseErrors.push({ phase: name, message: (err as Error).message });
      progress(`${name} failed: ${(err as Error).message}`);
      return null;
    }
  };

  try {
    progress(`stack ready at ${stack.url} (controller pid ${stack.controllerPid}, worker pid ${stack.workerPid})`);
    r.machine = machineInfo(await stack.docker.version().then((v) => v.Version, () => null));
    await sleep(2_000); // let start-up settle before the idle reading
    r.workerRssIdleMb = toMb(readRssBytes(stack.workerPid));
    r.controllerRssIdleMb = toMb(readRssBytes(stack.controllerPid));

    await phase(`(a) docker run --rm ×${DOCKER_RUNS}`, () => measureDockerRun(stack, r));

    const measured = await phase('uploading the measured function', async (): Promise<RunRequest> => {
      const uploaded = await uploadPython(stack.url, storedZip({ 'main.py': HELLO_SOURCE }));
      const request = { functionId: uploaded.functionId };
      // The platform's first run ever pays one-off costs (module loading, JIT): not a cold start's.
      const first = await runOnce(stack.url, request, REQUEST_TIMEOUT_MS);
      if (!first.ok) throw new Error(`the first run of the measured function failed: ${first.error}`);
      return request;
    });
    await phase(`(b) cold runs ×${COLD_RUNS}`, () => measureColdRuns(stack, r));

    if (measured) {
      await phase(`(c)+(e) warm runs ×${settings.warmRuns}`, () => measureWarmRuns(stack, measured, settings.warmRuns, clockTicks, r));
      for (const concurrency of CONCURRENCY_LEVELS) {
        await phase(`(d) throughput at concurrency ${concurrency} for ${settings.secondsPerLevel} s`, async () => {
          const rss = concurrency === 16 ? sampleMaxRss({ worker: stack.workerPid, controller: stack.controllerPid }, 200) : null;
          let level: ThroughputLevel;
          try {
            level = await measureThroughput(stack, measured, concurrency, settings.secondsPerLevel);
          } finally {
            const max = rss?.stop();
            if (max) {
              r.workerRssLoadMb = toMb(max.worker ?? null);
              r.controllerRssLoadMb = toMb(max.controller ?? null);
            }
          }
          r.throughput.push(level);
          const key = `throughputC${concurrency}` as const;
          r[`${key}RunsPerSec`] = level.runsPerSecond;
          r[`${key}Errors`] = level.errors;
        });
      }
    } else {
      r.phaseErrors.push({ phase: '(c), (d), (e)', message: 'skipped: no function to run' });
    }
  } finally {
    progress('stopping the stack');
    await stop();
  }

  r.targets = checkTargets(r);
  writeFileSync(RESULTS_FILE, JSON.stringify(r, null, 2) + '\n');
  console.log(formatReport(r));
  console.log(`\nwritten to ${path.relative(process.cwd(), RESULTS_FILE)}`);
  return r.phaseErrors.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`[bench] ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
