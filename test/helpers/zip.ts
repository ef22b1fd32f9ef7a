import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Zips a map of relative path → content with the real `zip` tool, from inside the folder. */
export function makeZip(files: Record<string, string | Buffer>): Buffer {
  const dir = mkdtempSync(path.join(tmpdir(), 'ng-zip-'));
  try {
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, 'src', name)), { recursive: true });
      writeFileSync(path.join(dir, 'src', name), content);
    }
    execFileSync('zip', ['-qr', path.join(dir, 'function.zip'), '.'], { cwd: path.join(dir, 'src') });
    return readFileSync(path.join(dir, 'function.zip'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
