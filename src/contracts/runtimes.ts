/** The runtimes a function can use: entrypoint at the archive root, how to build and run it. */
export const RUNTIMES = {
  python: { entrypoint: 'main.py', image: 'nanogrid-runtime-python', compile: null, command: ['python3', '-u', 'main.py'] },
  node: { entrypoint: 'index.js', image: 'nanogrid-runtime-node', compile: null, command: ['node', 'index.js'] },
  cpp: {
    entrypoint: 'main.cpp',
    image: 'nanogrid-runtime-cpp',
    // Compiled into /tmp so the workspace holds only what the user shipped and wrote.
    compile: ['g++', '-O2', '-std=c++17', '-o', '/tmp/nanogrid-main', 'main.cpp'],
    command: ['/tmp/nanogrid-main'],
  },
} as const;

export type RuntimeName = keyof typeof RUNTIMES;
export const RUNTIME_NAMES = Object.keys(RUNTIMES) as RuntimeName[];

export function isRuntimeName(value: unknown): value is RuntimeName {
  return typeof value === 'string' && Object.hasOwn(RUNTIMES, value);
}
