import type { MachineInfo } from './measure.ts';
import type { DockerRunMethod } from './dockerRun.ts';

export const CONCURRENCY_LEVELS = [1, 4, 16] as const;
export type ConcurrencyLevel = (typeof CONCURRENCY_LEVELS)[number];

export interface ThroughputLevel {
  concurrency: number;
  seconds: number;
  runs: number;
  errors: number;
  runsPerSecond: number | null;
  p50Ms: number | null;
  p95Ms: number | null;
  /** The first few distinct error reasons with their counts. */
  errorReasons: Record<string, number>;
}

/** Everything one bench run found: written as bench/results.json, one field per figure. */
export interface BenchResults {
  machine: MachineInfo;
  settings: {
    quick: boolean;
    secondsPerLevel: number;
    dockerRuns: number;
    coldRuns: number;
    warmRuns: number;
    workerConcurrency: number;
    requestTimeoutMs: number;
    clockTicksPerSecond: number;
  };
  /** (a) the yardstick: the runtime image run by hand, one container per run. */
  dockerRunMethod: DockerRunMethod | null;
  dockerRunCommand: string | null;
  dockerRunMedianMs: number | null;
  dockerRunErrors: number;
  /** (b) POST /run of a version never run before. */
  coldRunMedianMs: number | null;
  coldRunColdStart: (boolean | null)[];
  coldRunErrors: number;
  /** (c) sequential POST /run of one function. */
  warmRunCount: number;
  warmP50Ms: number | null;
  warmP95Ms: number | null;
  warmP99Ms: number | null;
  warmErrors: number;
  /** How many of the warm-phase results said coldStart: true. */
  warmColdStarts: number;
  /** (d) closed-loop clients at each concurrency. */
  throughputC1RunsPerSec: number | null;
  throughputC1Errors: number;
  throughputC4RunsPerSec: number | null;
  throughputC4Errors: number;
  throughputC16RunsPerSec: number | null;
  throughputC16Errors: number;
  throughput: ThroughputLevel[];
  /** (e) CPU time (utime + stime) per warm run. */
  cpuMsPerWarmRunController: number | null;
  cpuMsPerWarmRunWorker: number | null;
  cpuMsPerWarmRun: number | null;
  /** Not part of the target: CPU of the worker's reaped children (mount/umount of workspaces). */
  cpuMsPerWarmRunWorkerChildren: number | null;
  /** (f) resident memory. */
  workerRssIdleMb: number | null;
  workerRssLoadMb: number | null;
  controllerRssIdleMb: number | null;
  controllerRssLoadMb: number | null;
  samples: { dockerRunMs: number[]; coldRunMs: number[]; warmMs: number[] };
  /** Errors that stopped a whole phase (its figures are then null). */
  phaseErrors: { phase: string; message: string }[];
  targets: TargetCheck[];
}

export interface TargetCheck {
  name: string;
  target: string;
  value: string;
  /** null when the figure could not be measured. */
  pass: boolean | null;
}

const fmtMs = (ms: number | null) => (ms === null ? 'n/a' : `${ms.toFixed(ms < 10 ? 2 : 0)} ms`);
const fmtMb = (mb: number | null) => (mb === null ? 'n/a' : `${mb.toFixed(1)} MB`);
const fmtRate = (r: number | null) => (r === null ? 'n/a' : `${r.toFixed(2)} runs/s`);

/** The issue-6 targets, judged on the figures. */
export function checkTargets(r: BenchResults): TargetCheck[] {
  const a = r.dockerRunMedianMs;
  const check = (value: number | null, ok: (v: number) => boolean) => (value === null ? null : ok(value));
  const c16 = r.throughput.find((t) => t.concurrency === 16);
  return [
    { name: 'warm p50', target: '≤ 60 ms', value: fmtMs(r.warmP50Ms), pass: check(r.warmP50Ms, (v) => v <= 60) },
    {
      name: 'warm p50 vs docker run',
      target: a === null ? '≤ 0.08 × (a)' : `≤ ${fmtMs(0.08 * a)} (0.08 × a)`,
      value: fmtMs(r.warmP50Ms),
      pass: a === null ? null : check(r.warmP50Ms, (v) => v <= 0.08 * a),
    },
    {
      name: 'cold run vs docker run',
      target: a === null ? '≤ 1.0 × (a)' : `≤ ${fmtMs(a)} (1.0 × a)`,
      value: fmtMs(r.coldRunMedianMs),
      pass: a === null ? null : check(r.coldRunMedianMs, (v) => v <= a),
    },
    {
      name: 'throughput at concurrency 16',
      target: '≥ 40 runs/s, 0 errors',
      value: c16 ? `${fmtRate(c16.runsPerSecond)}, ${c16.errors} errors` : 'n/a',
      pass: c16 ? check(c16.runsPerSecond, (v) => v >= 40 && c16.errors === 0) : null,
    },
    { name: 'platform CPU per warm run', target: '≤ 5 ms', value: fmtMs(r.cpuMsPerWarmRun), pass: check(r.cpuMsPerWarmRun, (v) => v <= 5) },
  ];
}

interface Row {
  figure: string;
  value: string;
  target?: string;
  pass?: boolean | null;
}

function verdict(pass: boolean | null | undefined): string {
  if (pass === undefined) return '';
  return pass === null ? 'n/a' : pass ? 'PASS' : 'FAIL';
}

export function machineLine(m: MachineInfo): string {
  return `${m.cores} cores (${m.cpuModel}), ${(m.memoryMb / 1024).toFixed(1)} GiB RAM, ${m.os}, kernel ${m.kernel}, Docker ${m.dockerVersion ?? 'unknown'}, Node ${m.nodeVersion}, ${m.date}`;
}

/** The table: one row per figure, targets and PASS/FAIL beside the ones that have one. */
export function formatReport(r: BenchResults): string {
  const t = Object.fromEntries(r.targets.map((c) => [c.name, c]));
  const s = r.settings;
  const rows: Row[] = [
    { figure: `(a) docker run --rm, median of ${s.dockerRuns} (${r.dockerRunMethod ?? 'n/a'})`, value: fmtMs(r.dockerRunMedianMs) + (r.dockerRunErrors ? `, ${r.dockerRunErrors} errors` : '') },
    { figure: `(b) cold run (new version), median of ${s.coldRuns}`, value: fmtMs(r.coldRunMedianMs) + (r.coldRunErrors ? `, ${r.coldRunErrors} errors` : ''), target: t['cold run vs docker run']?.target, pass: t['cold run vs docker run']?.pass },
    { figure: '    coldStart field of those results', value: r.coldRunColdStart.length ? r.coldRunColdStart.map(String).join(' ') : 'n/a' },
    { figure: `(c) warm run p50 (${r.warmRunCount} sequential runs)`, value: fmtMs(r.warmP50Ms), target: t['warm p50']?.target, pass: t['warm p50']?.pass },
    { figure: '    warm run p50 vs (a)', value: fmtMs(r.warmP50Ms), target: t['warm p50 vs docker run']?.target, pass: t['warm p50 vs docker run']?.pass },
    { figure: '    warm run p95 / p99', value: `${fmtMs(r.warmP95Ms)} / ${fmtMs(r.warmP99Ms)}` },
    { figure: '    errors / results with coldStart: true', value: `${r.warmErrors} / ${r.warmColdStarts}` },
  ];
  for (const level of r.throughput) {
    const row: Row = {
      figure: `(d) throughput at concurrency ${level.concurrency} (${level.seconds.toFixed(1)} s)`,
      value: `${fmtRate(level.runsPerSecond)}, ${level.errors} errors, p50 ${fmtMs(level.p50Ms)}`,
    };
    if (level.concurrency === 16) Object.assign(row, { target: t['throughput at concurrency 16']?.target, pass: t['throughput at concurrency 16']?.pass });
    rows.push(row);
  }
  rows.push(
    { figure: '(e) CPU per warm run: controller', value: fmtMs(r.cpuMsPerWarmRunController) },
    { figure: '                      worker', value: fmtMs(r.cpuMsPerWarmRunWorker) },
    { figure: '                      controller + worker', value: fmtMs(r.cpuMsPerWarmRun), target: t['platform CPU per warm run']?.target, pass: t['platform CPU per warm run']?.pass },
    { figure: "    (worker's reaped children: mount/umount)", value: fmtMs(r.cpuMsPerWarmRunWorkerChildren) },
    { figure: '(f) worker RSS idle', value: fmtMb(r.workerRssIdleMb) },
    { figure: '    worker RSS under load (max, concurrency 16)', value: fmtMb(r.workerRssLoadMb) },
    { figure: '    controller RSS idle / under load', value: `${fmtMb(r.controllerRssIdleMb)} / ${fmtMb(r.controllerRssLoadMb)}` },
  );

  const header: Row = { figure: 'figure', value: 'value', target: 'target' };
  const width = (pick: (row: Row) => string) => Math.max(...[header, ...rows].map((row) => [...pick(row)].length));
  const wf = width((row) => row.figure);
  const wv = width((row) => row.value);
  const wt = width((row) => row.target ?? '');
  const pad = (text: string, n: number) => text + ' '.repeat(Math.max(0, n - [...text].length));
  const line = (row: Row, result: string) => `${pad(row.figure, wf)}  ${pad(row.value, wv)}  ${pad(row.target ?? '', wt)}  ${result}`.trimEnd();
  const out = [
    `NanoGrid Plus benchmark: ${machineLine(r.machine)}`,
    `${s.quick ? 'quick run: ' : ''}${s.secondsPerLevel} s per concurrency level, ${s.warmRuns} warm runs, worker concurrency ${s.workerConcurrency}`,
    '',
    line(header, 'result'),
    line({ figure: '-'.repeat(wf), value: '-'.repeat(wv), target: '-'.repeat(wt) }, '------'),
    ...rows.map((row) => line(row, verdict(row.pass))),
  ];
  for (const e of r.phaseErrors) out.push(`phase "${e.phase}" failed: ${e.message}`);
  for (const level of r.throughput) {
    const reasons = Object.entries(level.errorReasons);
    if (reasons.length) out.push(`errors at concurrency ${level.concurrency}: ${reasons.map(([why, n]) => `${why} ×${n}`).join(', ')}`);
  }
  return out.join('\n');
}
