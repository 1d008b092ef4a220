// Bundles our SDK v2 runner (sdk/src/runner) into sdk/dist/runner.cjs, the one module a worker loads
// at start-up. The IPC schemas (src/contract/ipc.ts, with zod/mini) go to a file of their own,
// sdk/dist/runner-ipc.cjs, which only a prewarmed runner imports, while it waits: compiling them
// with every start cost a fresh worker ~1.5–2 ms (BENCHMARKS.md).
import { build } from 'esbuild'

const IPC = /\/src\/contract\/ipc\.js$/
const IPC_FILE = './runner-ipc.cjs'
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
        // The import() becomes a require() of the file beside the bundle: an ES import of a CommonJS
        // file has Node run its CJS lexer over the 45 KB for export names, and V8 optimise the lexer
        // for that on a helper thread, which left every prewarmed worker ~9 MB larger (measured).
        setup(b) {
          b.onResolve({ filter: IPC }, (args) => (args.kind === 'dynamic-import' ? { path: IPC_FILE, namespace: 'ipc-beside' } : undefined))
          b.onLoad({ filter: /.*/, namespace: 'ipc-beside' }, () => ({ contents: `module.exports = require('${IPC_FILE}')` }))
          b.onResolve({ filter: /^\.\/runner-ipc\.cjs$/, namespace: 'ipc-beside' }, (args) => ({ path: args.path, external: true }))
        },
      },
    ],
  }),
  build({ ...common, entryPoints: ['src/contract/ipc.ts'], outfile: 'sdk/dist/runner-ipc.cjs' }),
])
