import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, envNameFor, redactConfig, ConfigError } from '../../src/config/load.ts';
import { DEFAULT_PACKAGE_LIMITS } from '../../src/packages/inspect.ts';

describe('config', () => {
  it('reads the defaults from config/default.yaml', () => {
    const config = loadConfig({});
    assert.equal(config.controller.port, 8080);
    assert.equal(config.storage.codeBucket, 'nanogrid-code-bucket');
    assert.equal(config.storage.userDataBucket, 'nanogrid-user-data');
    assert.equal(config.results.prefix, 'result:');
    assert.equal(config.controller.waitBudgetMs, 25000);
    assert.equal(config.runs.defaultTimeoutMs, 10000);
    assert.equal(config.runs.defaultMemoryMb, 256);
  });

  it('takes environment overrides, generic and familiar, with coercion', () => {
    const config = loadConfig({ NANOGRID_CONTROLLER_WAIT_BUDGET_MS: '500', REDIS_URL: 'redis://h:1', PORT: '9000', NANOGRID_AWS_FORCE_PATH_STYLE: 'false' });
    assert.equal(config.controller.waitBudgetMs, 500);
    assert.equal(config.redis.url, 'redis://h:1');
    assert.equal(config.controller.port, 9000);
    assert.equal(config.aws.forcePathStyle, false);
  });

  it('stops with a message naming the bad option and where it came from', () => {
    assert.throws(
      () => loadConfig({ NANOGRID_CONTROLLER_PORT: 'eighty' }),
      (err: Error) => err instanceof ConfigError && /controller\.port/.test(err.message) && /NANOGRID_CONTROLLER_PORT/.test(err.message),
    );
    assert.throws(() => loadConfig({ NANOGRID_LOG_LEVEL: 'loud' }), /logLevel/);
  });

  it('holds the package limits of the issue (10,000 entries, 250 MB, ratio 200), overridable by env', () => {
    assert.deepEqual(loadConfig({}).packages, DEFAULT_PACKAGE_LIMITS);
    const config = loadConfig({ NANOGRID_PACKAGES_MAX_ENTRIES: '50', NANOGRID_PACKAGES_MAX_UNCOMPRESSED_BYTES: '1000000', NANOGRID_PACKAGES_MAX_COMPRESSION_RATIO: '20' });
    assert.deepEqual(config.packages, { maxEntries: 50, maxUncompressedBytes: 1000000, maxCompressionRatio: 20 });
    assert.throws(() => loadConfig({ NANOGRID_PACKAGES_MAX_ENTRIES: '0' }), /packages\.maxEntries.*NANOGRID_PACKAGES_MAX_ENTRIES/s);
  });

  it('derives environment names from option paths', () => {
    assert.equal(envNameFor('worker.stdoutCapBytes'), 'NANOGRID_WORKER_STDOUT_CAP_BYTES');
  });

  it('removes secrets from what it logs', () => {
    const config = loadConfig({ REDIS_URL: 'redis://user:pw@h:1', AWS_SECRET_ACCESS_KEY: 'shh' });
    const shown = JSON.stringify(redactConfig(config));
    assert.ok(!shown.includes('pw@'));
    assert.ok(!shown.includes('shh'));
  });
});
