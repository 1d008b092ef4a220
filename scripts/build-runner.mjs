// Bundles our SDK v2 runner (sdk/src/runner) into sdk/dist/runner.cjs, the one module a worker loads
// at start-up. Two modules go to files of their own beside it, which the bundle require()s only when
// it needs them:
// - the IPC schemas (src/contract/ipc.ts, with zod/mini), sdk/dist/runner-ipc.cjs, which only a
//   prewarmed runner imports, while it waits: compiling them with every start cost a fresh worker
//   ~1.5–2 ms (BENCHMARKS.md);
// - qs, sdk/dist/runner-qs.cjs, for a query string or form with a bracketed key (`a[b]=1`).
import { build } from 'esbuild'

const BESIDE = [
  { filter: /\/src\/contract\/ipc\.js$/, file: './runner-ipc.cjs' },
  { filter: /^qs$/, file: './runner-qs.cjs' },
]
/** @type {import('esbuild').BuildOptions} */
const common = { bundle: true, platform: 'node', format: 'cjs', target: 'node20.18', logLevel: 'warning' }

await Promise.all([
  build({
    ...common,
    entryPoints: ['sdk/src/runner/main.ts'],
    outfile: 'sdk/dist/runner.cjs',
    plugins: [
      {
        name: 'beside',
        // Each import() becomes a require() of the file beside the bundle: an ES import of a CommonJS
        // file has Node run its CJS lexer over it for export names, and V8 optimise the lexer for that
        // on a helper thread, which left every prewarmed worker ~9 MB larger (measured).
        setup(b) {
          for (const { filter, file } of BESIDE) {
            b.onResolve({ filter }, (args) => (args.kind === 'dynamic-import' ? { path: file, namespace: 'beside' } : undefined))
          }
          b.onLoad({ filter: /.*/, namespace: 'beside' }, (args) => ({ contents: `module.exports = require('${args.path}')` }))
          b.onResolve({ filter: /^\.\/runner-[a-z]+\.cjs$/, namespace: 'beside' }, (args) => ({ path: args.path, external: true }))
        },
      },
    ],
  }),
  build({ ...common, entryPoints: ['src/contract/ipc.ts'], outfile: 'sdk/dist/runner-ipc.cjs' }),
  build({ ...common, entryPoints: ['qs'], outfile: 'sdk/dist/runner-qs.cjs' }),
])
