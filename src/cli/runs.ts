import { EXIT, printJson, writeLine, type Command } from './args.ts';
import { isFinal } from './api.ts';
import { printResult, waitForResult } from './result.ts';

export const runsGetCommand: Command = {
  name: 'runs get',
  summary: "show a run's result, or where it is",
  help: `Usage: nanogrid runs get REQUEST_ID [--wait] [--json]

Prints a finished run like \`nanogrid invoke\` does (its stdout, its stderr, a summary line on stderr);
a run still going prints QUEUED or RUNNING and its stage. Exits 0 whenever the run is found.

Options:
  --wait     wait until the run has finished

Example:
  nanogrid runs get 3b8f7c2e-… --json`,
  options: { wait: { type: 'boolean' } },
  positionals: { names: ['REQUEST_ID'], min: 1 },
  async run(args, ctx) {
    const requestId = args.positionals[0] as string;
    const run = args.values.wait ? await waitForResult(ctx.api, requestId) : await ctx.api.getRun(requestId);
    if (isFinal(run)) printResult(ctx, run);
    else if (ctx.json) printJson(ctx, run);
    else writeLine(ctx.io.stdout, `${run.status}${run.stage ? ` (${run.stage})` : ''} · request ${run.requestId}`);
    return EXIT.OK;
  },
};
