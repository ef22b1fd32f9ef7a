// `npm start`: the whole stack on one machine, on embedded defaults.
import { loadConfig, redactConfig, ConfigError } from '../config/load.ts';
import { createLogger } from '../log.ts';
import { MissingDependencyError } from './processes.ts';
import { startLocalStack } from './stack.ts';

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
}
const log = createLogger(config.logLevel, 'nanogrid');
log.info({ config: redactConfig(config) }, 'configuration');

try {
  const stack = await startLocalStack(config, log);
  const url = stack.controller.url;
  process.stderr.write(`
  NanoGrid Plus is up.
    controller   ${url}            (dashboard: ${url}/admin/queues, health: ${url}/readyz)
    redis        ${stack.redisUrl}
    S3           ${stack.s3Url}     (buckets ${stack.config.storage.codeBucket}, ${stack.config.storage.userDataBucket})
    SQS          ${stack.sqsUrl}    (queue ${stack.config.queue.url})
    state        ${stack.config.stateDir}

  Try it:
    printf 'print("Hello from NanoGrid Plus!")\\n' > main.py && zip function.zip main.py
    curl -s -F file=@function.zip -F runtime=python ${url}/upload
    curl -s -X POST ${url}/run -H 'Content-Type: application/json' -d '{"functionId":"<functionId from above>","inputData":{}}'

  Ctrl-C stops everything.
`);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping the stack');
    void stack.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
} catch (err) {
  if (err instanceof MissingDependencyError) {
    console.error(`\nnpm start cannot continue: ${err.message}\n`);
    process.exit(1);
  }
  log.fatal({ err }, 'the stack did not start');
  process.exit(1);
}
