// The start of one (org, plugin) worker, CONTRACT.md §2: manifest → import the entry → org env →
// onInitialize → onStart → listen on 127.0.0.1 → IPC {"type":"ready","port"}.
import type { ReadyMessage } from '../../../src/contract/ipc.js'
import type { HayGlobalContext } from '../types.js'
import type { RunnerArgs } from './args.js'
import { RunnerError } from './errors.js'
import { messageOf } from './guards.js'
import type { Lifecycle } from './lifecycle.js'
import { createLogger } from './logger.js'
import { loadManifest } from './manifest.js'
import { loadOrgData } from './org-env.js'
import { importEntry, loadPlugin } from './plugin-loader.js'
import { createRegistry } from './registry.js'
import type { WorkerServer } from './http/server.js'
import { createWorker } from './worker.js'

export const MAX_BODY_BYTES = 5 * 1024 * 1024

export async function startWorker(args: RunnerArgs, lifecycle: Lifecycle): Promise<void> {
  const manifest = loadManifest(args.pluginPath)
  const entry = importEntry(manifest.entryPath) // loads while the org environment is read
  const env = process.env
  const orgData = loadOrgData(env, args.orgId, args.mode)
  const logger = createLogger({ pluginId: manifest.pluginId, orgId: orgData.org.id }, env.NODE_ENV === 'development')

  const registry = createRegistry(logger)
  const globalCtx: HayGlobalContext = { register: registry.register, config: { field: (name) => ({ name }) }, logger }
  const definition = await loadPlugin(entry, manifest.entryPath, globalCtx)
  lifecycle.enter('onInitialize')
  try {
    await definition.onInitialize?.(globalCtx)
  } catch (err) {
    throw new RunnerError('INIT_FAILED', `onInitialize threw: ${messageOf(err)}`, { cause: err })
  }

  lifecycle.enter('onStart')
  const { pluginDir, envAllowList } = manifest
  const worker = createWorker({ definition, registry, orgData, pluginDir, envAllowList, env, logger, maxBodyBytes: MAX_BODY_BYTES })
  lifecycle.attach(worker)
  try {
    await definition.onStart?.(worker.startCtx)
  } catch (err) {
    throw new RunnerError('START_FAILED', `onStart threw: ${messageOf(err)}`, { cause: err })
  }
  if (lifecycle.isStopping()) return

  const port = await listen(worker.server, args.port)
  lifecycle.enter('serving')
  // Push readiness. If the parent is already gone, the lifecycle's 'disconnect' handler stops us.
  const ready: ReadyMessage = { type: 'ready', port }
  process.send?.(ready, undefined, undefined, () => {})
}

/** Listens on loopback only (workers are reached through the gateway) and resolves with the bound port. */
async function listen(server: WorkerServer, port: number): Promise<number> {
  await new Promise<void>((resolveListening, reject) => {
    server.once('error', reject)
    server.listen({ port, host: '127.0.0.1' }, () => {
      server.off('error', reject)
      resolveListening()
    })
  }).catch((err: unknown) => {
    throw new RunnerError('LISTEN_FAILED', `cannot listen on 127.0.0.1:${port}: ${messageOf(err)}`, { cause: err })
  })
  const address = server.address()
  return typeof address === 'object' && address ? address.port : port
}
