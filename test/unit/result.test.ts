import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { memoryAdvice } from '../../src/worker/result.ts';
import { contentTypeFor } from '../../src/storage/contentType.ts';

const MB = 1024 * 1024;

describe('memory advice', () => {
  it('recommends peak + 25 % rounded up to 64 MB', () => {
    const advice = memoryAdvice(100 * MB, 256, 'SUCCESS');
    assert.equal(advice.recommendedMemoryMb, 128);
    assert.match(advice.optimizationTip, /100\.0 MB of 256 MB/);
  });
  it('says when the limit is tight', () => {
    assert.match(memoryAdvice(230 * MB, 256, 'SUCCESS').optimizationTip, /raise memoryMb to 320/);
  });
  it('doubles the limit after an OOM kill', () => {
    assert.equal(memoryAdvice(0, 128, 'OOM').recommendedMemoryMb, 256);
  });
  it('suggests a smaller limit when the code needs little', () => {
    assert.match(memoryAdvice(2 * MB, 1024, 'SUCCESS').optimizationTip, /memoryMb=64 would do/);
  });
});

describe('content types of output files', () => {
  const cases: [string, RegExp][] = [
    ['a.jpg', /^image\/jpeg$/], ['a.jpeg', /^image\/jpeg$/], ['a.png', /^image\/png$/], ['a.gif', /^image\/gif$/],
    ['a.pdf', /^application\/pdf$/], ['a.txt', /^text\/plain/], ['a.json', /^application\/json/], ['a.csv', /^text\/csv/],
    ['a.zip', /^application\/zip$/], ['a.tar.gz', /^application\/gzip$/], ['a.tgz', /^application\/gzip$/],
    ['a.unknownext', /^application\/octet-stream$/], ['noext', /^application\/octet-stream$/],
  ];
  for (const [name, type] of cases) it(`${name} → ${type.source}`, () => assert.match(contentTypeFor(name), type));
});
