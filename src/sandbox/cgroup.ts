import { closeSync, openSync, readSync, writeSync } from 'node:fs';

/** Where the engine keeps a container's peak-memory counter, for the usual drivers on v1 and v2. */
function peakFiles(containerId: string): string[] {
  return [
    `/sys/fs/cgroup/memory/docker/${containerId}/memory.max_usage_in_bytes`,
    `/sys/fs/cgroup/memory/system.slice/docker-${containerId}.scope/memory.max_usage_in_bytes`,
    `/sys/fs/cgroup/system.slice/docker-${containerId}.scope/memory.peak`,
    `/sys/fs/cgroup/docker/${containerId}/memory.peak`,
  ];
}

/** Measures one run's peak memory from the host: reset before the run, read after it. */
export interface PeakProbe {
  /** The container's peak since the reset, in bytes; null when it cannot be read. */
  read(): number | null;
  close(): void;
}

/**
 * Resets the container's peak-memory counter and keeps the file open. On cgroup v1 a write of 0
 * resets max_usage_in_bytes for everyone; on v2 (Linux ≥ 6.12) a write to memory.peak resets it
 * only for reads through the same open file — so the read goes through this descriptor too.
 * Returns null where the host allows neither (e.g. the worker is not root).
 * Synchronous on purpose: four tiny kernel-file calls per run cost less than four thread-pool trips.
 */
export function openPeakProbe(containerId: string): PeakProbe | null {
  for (const file of peakFiles(containerId)) {
    let fd: number;
    try {
      fd = openSync(file, 'r+');
    } catch {
      continue;
    }
    try {
      writeSync(fd, '0', 0);
    } catch {
      closeSync(fd);
      continue;
    }
    return {
      read() {
        try {
          const buffer = Buffer.alloc(64);
          const n = readSync(fd, buffer, 0, buffer.length, 0);
          const value = Number.parseInt(buffer.subarray(0, n).toString().trim(), 10);
          return Number.isFinite(value) ? value : null;
        } catch {
          return null;
        }
      },
      close: () => closeSync(fd),
    };
  }
  return null;
}
