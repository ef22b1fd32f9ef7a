import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

/** The q-th percentile (0–100) of the samples, nearest-rank; null when there are none. */
export function percentile(samples: readonly number[], q: number): number | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((q / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? null;
}

/** The median (mean of the two middle values for an even count); null when there are none. */
export function median(samples: readonly number[]): number | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const upper = sorted[mid] as number;
  return sorted.length % 2 === 1 ? upper : ((sorted[mid - 1] as number) + upper) / 2;
}

export function round(value: number | null, digits = 1): number | null {
  if (value === null || !Number.isFinite(value)) return null;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Milliseconds since an arbitrary origin, sub-millisecond resolution. */
export const now = (): number => performance.now();

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, almost always 100). */
export function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

export interface CpuTicks {
  /** utime + stime of the process itself. */
  self: number;
  /** cutime + cstime: children it has waited for (e.g. the worker's mount/umount). */
  children: number;
}

/** CPU time of a live process from /proc/<pid>/stat, in clock ticks. */
export function readCpuTicks(pid: number): CpuTicks {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces: split after its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field n is fields[n - 3].
  const field = (n: number) => Number(fields[n - 3]);
  return { self: field(14) + field(15), children: field(16) + field(17) };
}

/** Resident set size of a live process from /proc/<pid>/status, in bytes; null when it is gone. */
export function readRssBytes(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Samples the RSS of some processes every `intervalMs` and keeps each one's maximum. */
export function sampleMaxRss(pids: Record<string, number>, intervalMs = 200): { stop(): Record<string, number | null> } {
  const max: Record<string, number | null> = Object.fromEntries(Object.keys(pids).map((k) => [k, null]));
  const sample = () => {
    for (const [name, pid] of Object.entries(pids)) {
      const rss = readRssBytes(pid);
      if (rss !== null) max[name] = Math.max(max[name] ?? 0, rss);
    }
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return max;
    },
  };
}

export const toMb = (bytes: number | null): number | null => (bytes === null ? null : round(bytes / (1024 * 1024), 1));

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryMb: number;
  kernel: string;
  os: string;
  dockerVersion: string | null;
  nodeVersion: string;
  date: string;
}

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os.type();
  } catch {
    return os.type();
  }
}

export function machineInfo(dockerVersion: string | null): MachineInfo {
  return {
    cores: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryMb: Math.round(os.totalmem() / (1024 * 1024)),
    kernel: os.release(),
    os: osName(),
    dockerVersion,
    nodeVersion: process.version,
    date: new Date().toISOString(),
  };
}
