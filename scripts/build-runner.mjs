// Bundles our SDK v2 runner (sdk/src/runner) into sdk/dist/runner-bundle.cjs, the one module a worker
// loads at start-up, puts its executable beside it (sdk/dist/runner.cjs, from sdk/src/runner/entry.cjs),
// and has that bundle's V8 code cache written (scripts/runner-code-cache.cjs). Two modules go to files of
// their own beside the bundle, which it require()s only when it needs them:
// - the IPC schemas (src/contract/ipc.ts, with zod/mini), sdk/dist/runner-ipc.cjs, which only a
//   prewarmed runner imports, while it waits: compiling them with every start cost a fresh worker
//   ~1.5–2 ms (BENCHMARKS.md);
// - qs, sdk/dist/runner-qs.cjs, for a query string or form with a bracketed key (`a[b]=1`).
// - import() (sdk/src/runner/import-module.cjs), sdk/dist/runner-import.cjs: code V8 took from a code
//   cache has no dynamic-import callback, so the bundle's import()s go through this file Node compiles.
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, rmSync } from 'node:fs'
import { build } from 'esbuild'

const BESIDE = [
  { filter: /\/src\/contract\/ipc\.js$/, file: './runner-ipc.cjs' },
  { filter: /^qs$/, file: './runner-qs.cjs' },
  { filter: /\/import-module\.cjs$/, file: './runner-import.cjs' },
]
/** @type {import('esbuild').BuildOptions} */
const common = { bundle: true, platform: 'node', format: 'cjs', target: 'node20.18', logLevel: 'warning' }

// A cache of an older bundle must never meet a new one: V8 checks only the source's length.
rmSync('sdk/dist/runner-bundle.cache', { force: true })
await Promise.all([
  build({
    ...common,
    entryPoints: ['sdk/src/runner/main.ts'],
    outfile: 'sdk/dist/runner-bundle.cjs',
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
copyFileSync('sdk/src/runner/entry.cjs', 'sdk/dist/runner.cjs')
copyFileSync('sdk/src/runner/import-module.cjs', 'sdk/dist/runner-import.cjs')
chmodSync('sdk/dist/runner.cjs', 0o755)

// Without the cache the runner still works (compiled from source, ~3 ms slower to start): say so, go on.
const cache = spawnSync(process.execPath, ['scripts/runner-code-cache.cjs'], { stdio: 'inherit' })
if (cache.status !== 0) process.stderr.write('build-runner: no code cache written for sdk/dist/runner-bundle.cjs\n')
