// The SDK v2 runner (CONTRACT.md §2): one process per organization × plugin.
//
//   node sdk/dist/runner.cjs --plugin-path=<abs dir> --org-id=<orgId> --port=<port> --mode=production
//   node sdk/dist/runner.cjs --prewarm      (the gateway's prewarmed pool: the arguments come over IPC)
//
// Exit 1: init failed; exit 2: could not serve; exit 0: SIGTERM, SIGINT or parent IPC disconnect.
// Built into one CommonJS file, sdk/dist/runner-bundle.cjs, by `npm run build` (esbuild): on the
// cold-start path every module file costs its own resolve, read and link, and an ES module entry that
// imports node:http makes Node 22+ load its whole bundled undici to build the import's facade
// (BENCHMARKS.md). runner.cjs (entry.cjs) runs it with its V8 code cache.
import { parseArgs } from './args.js'
import { startLifecycle } from './lifecycle.js'
import { awaitSpecialization, isPrewarm } from './prewarm.js'
import { startWorker } from './start.js'

async function main(): Promise<void> {
  enableCompileCache()
  const lifecycle = startLifecycle()
  try {
    const argv = process.argv.slice(2)
    await startWorker(parseArgs(isPrewarm(argv) ? await awaitSpecialization() : argv), lifecycle)
  } catch (err) {
    lifecycle.fail(err)
  }
}

void main()

/**
 * Node 22.1+ caches the V8 code of every module loaded from here on (the plugin's, the SDK's) in
 * TMPDIR/node-compile-cache, so a start compiles only what changed since the last one. Node 20 has
 * no such API: nothing to do there.
 */
function enableCompileCache(): void {
  const nodeModule = process.getBuiltinModule('node:module') as { enableCompileCache?: () => unknown }
  nodeModule.enableCompileCache?.()
}
