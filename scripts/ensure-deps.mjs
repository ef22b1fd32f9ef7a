// Runs before `npm start` and `npm test`: installs the npm packages on a fresh checkout, and says
// what is missing instead of failing with "tsx: not found".
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const [major] = process.versions.node.split('.').map(Number);
if (major < 20) {
  console.error(`NanoGrid Plus needs Node.js 20 or newer; this is ${process.version}.`);
  process.exit(1);
}
if (!existsSync('node_modules/.package-lock.json') || !existsSync('node_modules/tsx')) {
  console.error('node_modules is missing: running `npm ci` once.');
  const res = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { stdio: 'inherit' });
  if (res.status !== 0) process.exit(res.status ?? 1);
}
