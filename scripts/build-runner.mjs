// Bundles our SDK v2 runner (sdk/src/runner) into sdk/dist/runner.cjs, the one module a worker loads
// at start-up. The IPC schemas (src/contract/ipc.ts, with zod/mini) go to a file of their own,
// sdk/dist/runner-ipc.cjs, which only a prewarmed runner imports, while it waits: compiling them
// with every start cost a fresh worker ~1.5–2 ms (BENCHMARKS.md).
import { build } from 'esbuild'

const IPC = /\/src\/contract\/ipc\.js$/
/** @type {import('esbuild').BuildOptions} */
const common = { bundle: true, platform: 'node', format: 'cjs', target: 'node20.18', logLevel: 'warning' }

await Promise.all([
  build({
    ...common,
    entryPoints: ['sdk/src/runner/main.ts'],
    outfile: 'sdk/dist/runner.cjs',
    plugins: [
      {
        name: 'ipc-beside',
        setup(b) {
          b.onResolve({ filter: IPC }, (args) =>
            args.kind === 'dynamic-import' ? { path: './runner-ipc.cjs', external: true } : undefined,
          )
        },
      },
    ],
  }),
  build({ ...common, entryPoints: ['src/contract/ipc.ts'], outfile: 'sdk/dist/runner-ipc.cjs' }),
])
