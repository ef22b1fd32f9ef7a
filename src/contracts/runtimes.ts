/** The runtimes a function can use: entrypoint at the archive root, how to build and run it. */
export const RUNTIMES = {
  python: {
    entrypoint: 'main.py',
    image: 'nanogrid-runtime-python',
    compile: null,
    compileOutput: null,
    command: ['python3', '-u', 'main.py'],
    // Fast path: the runner forks its own, already started interpreter and runs main.py in it.
    forkScript: 'main.py',
  },
  node: { entrypoint: 'index.js', image: 'nanogrid-runtime-node', compile: null, compileOutput: null, command: ['node', 'index.js'], forkScript: null },
  cpp: {
    entrypoint: 'main.cpp',
    image: 'nanogrid-runtime-cpp',
    // Built once per warm container, outside the workspace, and rebuilt if the program changes.
    compile: ['g++', '-O2', '-std=c++17', '-o', '/tmp/.nanogrid-build/main', 'main.cpp'],
    compileOutput: '/tmp/.nanogrid-build/main',
    command: ['/tmp/.nanogrid-build/main'],
    forkScript: null,
  },
} as const;

export type RuntimeName = keyof typeof RUNTIMES;
export const RUNTIME_NAMES = Object.keys(RUNTIMES) as RuntimeName[];

export function isRuntimeName(value: unknown): value is RuntimeName {
  return typeof value === 'string' && Object.hasOwn(RUNTIMES, value);
}

/** Why a runtime name is refused; the same words at POST /upload and in the CLI. */
export function unknownRuntimeMessage(runtime: string | undefined): string {
  return `${runtime ? `unknown runtime "${runtime}"` : 'the "runtime" field is missing'}; known runtimes: ${RUNTIME_NAMES.join(', ')}`;
}
