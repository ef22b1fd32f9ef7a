import type { RunResult } from '../../contracts/result.ts';
import type { ResultBus } from '../../bus/resultBus.ts';
import type { StageContext } from './types.ts';

export interface PublishDeps extends StageContext {
  bus: ResultBus;
}

/** Puts the result on the stream (once) and the channel; ends the run's log with [DONE]. */
export async function publish(result: RunResult, deps: PublishDeps): Promise<{ subscribers: number; stored: boolean; result: RunResult }> {
  const { stored, subscribers, result: kept } = await deps.bus.publish(result);
  const tag = kept.status === 'SUCCESS' ? '[DONE][OK]' : '[DONE][FAIL]';
  deps.log.info(
    { stage: 'publish', status: kept.status, subscribers, duplicate: !stored },
    `${tag} requestId=${kept.requestId} status=${kept.status} subscribers=${subscribers}`,
  );
  return { subscribers, stored, result: kept };
}
