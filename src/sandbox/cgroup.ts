import { writeFile } from 'node:fs/promises';

/** Where the engine keeps a container's memory cgroup, for the usual drivers on v1 and v2. */
function peakFiles(containerId: string): string[] {
  return [
    `/sys/fs/cgroup/memory/docker/${containerId}/memory.max_usage_in_bytes`,
    `/sys/fs/cgroup/memory/system.slice/docker-${containerId}.scope/memory.max_usage_in_bytes`,
    `/sys/fs/cgroup/system.slice/docker-${containerId}.scope/memory.peak`,
    `/sys/fs/cgroup/docker/${containerId}/memory.peak`,
  ];
}

/**
 * Resets the container's peak-memory counter before a warm run, so the run reports its own peak
 * rather than the container's all-time one. Returns false where the host does not allow it.
 */
export async function resetPeakMemory(containerId: string): Promise<boolean> {
  for (const file of peakFiles(containerId)) {
    if (await writeFile(file, '0').then(() => true, () => false)) return true;
  }
  return false;
}
