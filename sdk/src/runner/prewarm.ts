// Prewarmed mode: `runner.cjs --prewarm` boots with the minimal base env, loads the runtime, and
// waits for the gateway to hand it one (org, plugin) over IPC. It then becomes exactly the process a
// fresh spawn would have been: same argv, same env additions, same working directory.
import { get } from 'node:http'
import type { PrewarmedMessage, SpecializeMessage } from '../../../src/contract/ipc.js'
import { importModule } from './dynamic-import.js'
import { RunnerError } from './errors.js'
import { createLogger } from './logger.js'
import { createRegistry } from './registry.js'
import { MAX_BODY_BYTES } from './start.js'
import { createWorker } from './worker.js'

export const isPrewarm = (argv: readonly string[]): boolean => argv.length === 1 && argv[0] === '--prewarm'

/** Resolves with the argv a specialize message carries, after applying its env and cwd. */
export async function awaitSpecialization(): Promise<string[]> {
  if (!process.send || !process.channel) throw new RunnerError('BAD_ARGS', '--prewarm needs an IPC channel')
  const channel = process.channel
  channel.ref() // nothing else keeps a waiting process alive
  // The contract's schema is imported here, not at the top: loading zod costs a start milliseconds
  // (BENCHMARKS.md), which a fresh worker never needs and a prewarmed one spends while it waits. The
  // bundle keeps it in a file of its own (scripts/build-runner.mjs). One parse now compiles zod's
  // fast path, which would otherwise be compiled when the real message arrives, on the cold start.
  const [{ SpecializeMessage }] = await Promise.all([import('../../../src/contract/ipc.js'), warmUp()])
  SpecializeMessage.safeParse({ type: 'specialize', argv: [], env: {}, cwd: '/' } satisfies SpecializeMessage)
  const specialized = new Promise<string[]>((resolveArgs) => {
    const onMessage = (msg: unknown) => {
      const parsed = SpecializeMessage.safeParse(msg)
      if (!parsed.success) return
      const { argv, env, cwd } = parsed.data
      process.off('message', onMessage)
      channel.unref()
      Object.assign(process.env, env)
      process.chdir(cwd)
      process.argv.splice(2, Infinity, ...argv)
      resolveArgs(argv)
    }
    process.on('message', onMessage)
  })
  const prewarmed: PrewarmedMessage = { type: 'prewarmed' }
  process.send(prewarmed, undefined, undefined, () => {})
  return specialized
}

// The package plugin entries import: resolving it by name during the wait runs (and compiles) the
// loader's package resolution, and leaves the module cached for the plugin's own import.
const SDK_PACKAGE = '@plugin-gateway/sdk'

/**
 * While it waits, a prewarmed runner loads the SDK and serves itself a few loopback requests
 * through a throwaway worker, so module resolution, node:http's server, parser and socket paths and
 * the worker's own request handling are compiled before the first real request instead of during it.
 * Nothing of it survives: the worker is closed and its registry dropped before specialization.
 */
async function warmUp(): Promise<void> {
  await importModule(SDK_PACKAGE).catch(() => {}) // absent when the runner is used outside its package
  const logger = createLogger({ pluginId: 'warm-up', orgId: 'warm-up' }, false)
  const registry = createRegistry(logger)
  registry.register.route('GET', '/warm-up/:id', (req, res) => {
    res.json({ id: req.params.id })
  })
  const { server } = createWorker({
    definition: { name: 'warm-up' },
    registry,
    orgData: { org: { id: 'warm-up' }, config: {}, auth: null },
    pluginDir: process.cwd(),
    envAllowList: new Set(),
    env: {},
    logger,
    maxBodyBytes: MAX_BODY_BYTES,
  })
  await new Promise<void>((resolveListening) => server.listen(0, '127.0.0.1', resolveListening))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  for (const path of ['/warm-up/1?q=1', '/health', '/warm-up/2', '/missing']) {
    await new Promise<void>((done) => {
      get({ host: '127.0.0.1', port, path, agent: false }, (res) => res.resume().on('end', done)).on('error', () => done())
    })
  }
  await new Promise<void>((resolveClosed) => server.close(() => resolveClosed()))
}
