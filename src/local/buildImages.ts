// `npm run images [runtime...]`: builds (or confirms) the runtime images, offline, from Debian packages.
import Docker from 'dockerode';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../log.ts';
import { RUNTIME_NAMES, isRuntimeName } from '../contracts/runtimes.ts';
import { ensureRuntimeImages } from './images.ts';

const config = loadConfig();
const log = createLogger(config.logLevel, 'images');
const wanted = process.argv.slice(2);
const bad = wanted.filter((r) => !isRuntimeName(r));
if (bad.length > 0) {
  console.error(`unknown runtime(s): ${bad.join(', ')}; known: ${RUNTIME_NAMES.join(', ')}`);
  process.exit(2);
}
const runtimes = wanted.length > 0 ? wanted.filter(isRuntimeName) : RUNTIME_NAMES;
const docker = new Docker({ socketPath: config.worker.dockerSocket });
await ensureRuntimeImages(docker, runtimes, { stateDir: config.stateDir }, log);
