#!/usr/bin/env node
// The SDK v2 runner (CONTRACT.md §2): one process per organization × plugin.
//
//   node sdk/dist/runner/main.js --plugin-path=<abs dir> --org-id=<orgId> --port=<port> --mode=production
//
// Order: manifest → import entry → onInitialize → org env → onStart → listen on 127.0.0.1 →
// IPC {"type":"ready","port"}. Exit 1: init failed; exit 2: could not serve; exit 0: SIGTERM,
// SIGINT or parent IPC disconnect. This file only wires; it is on the cold-start path, so it
// imports nothing that every plugin does not need.
import type { Server } from 'node:http'
import type { HayGlobalContext } from '../types.js'
import type { WorkerRequest, WorkerResponse } from './http.js'
import { parseArgs } from './args.js'
import { exitCodeFor, messageOf, RunnerError } from './errors.js'
import { createLifecycle, type Lifecycle } from './lifecycle.js'
import { loadManifest } from './manifest.js'
import { createLogger, loadOrgData } from './org-runtime.js'
import { loadPlugin } from './plugin.js'
import { createRegistry } from './registry.js'
import { createWorkerServer } from './server.js'

const MAX_BODY_BYTES = 5 * 1024 * 1024
// The gateway escalates to SIGKILL 5 s after SIGTERM (CONTRACT.md §5); finish well inside that.
const SHUTDOWN_DEADLINE_MS = 3_000

type Phase = 'onInitialize' | 'onStart' | 'serving'

let phase: Phase = 'onInitialize'
let server: Server<typeof WorkerRequest, typeof WorkerResponse> | undefined
let lifecycle: Lifecycle | undefined
let stopping = false

function fail(err: unknown): never {
  const code = err instanceof RunnerError ? err.code : 'INIT_FAILED'
  const exitCode = exitCodeFor(code)
  process.stderr.write(`plugin-runner: ${exitCode === 2 ? 'runtime' : 'init'} failed: ${code}: ${messageOf(err)}\n`)
  process.exit(exitCode)
}

/** Stop accepting, run onDisable unless /disable already did, drain, exit 0, all bounded. */
function shutdown(): void {
  if (stopping) return
  stopping = true
  setTimeout(() => process.exit(0), SHUTDOWN_DEADLINE_MS).unref()
  if (!server || !lifecycle) process.exit(0) // nothing started that needs a goodbye
  const closed = new Promise<void>((resolve) => server?.close(() => resolve()))
  server.closeIdleConnections()
  Promise.all([lifecycle.disable(), closed]).finally(() => process.exit(0))
}

/**
 * If the event loop empties before the worker listens, a hook returned a promise that can never
 * settle. Say so and fail instead of exiting 0 as though all were well.
 */
function onBeforeExit(): void {
  if (phase !== 'serving') fail(new RunnerError('NEVER_SETTLED', `${phase} never settled and nothing else keeps the worker alive`))
}

async function run(): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const manifest = loadManifest(args.pluginPath)
  const env = process.env
  const orgData = loadOrgData(env, args.orgId, args.mode)
  const logger = createLogger({ pluginId: manifest.pluginId, orgId: orgData.org.id }, env['NODE_ENV'] === 'development')

  const registry = createRegistry()
  const globalCtx: HayGlobalContext = { register: registry.register, config: { field: (name) => ({ name }) }, logger }
  const definition = await loadPlugin(manifest.entryPath, globalCtx)
  try {
    await definition.onInitialize?.(globalCtx)
  } catch (err) {
    throw new RunnerError('INIT_FAILED', `onInitialize threw: ${messageOf(err)}`, { cause: err })
  }

  phase = 'onStart'
  lifecycle = createLifecycle({ definition, registry, manifest, pluginDir: manifest.pluginDir, orgData, env, logger })
  try {
    await definition.onStart?.(lifecycle.startCtx)
  } catch (err) {
    throw new RunnerError('START_FAILED', `onStart threw: ${messageOf(err)}`, { cause: err })
  }

  const healthJson = JSON.stringify({ status: 'healthy', pid: process.pid, orgId: orgData.org.id })
  const srv = createWorkerServer({ healthJson, registry, lifecycle, logger, maxBodyBytes: MAX_BODY_BYTES })
  server = srv
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject)
    // Loopback only: workers are reachable through the gateway, never from the network.
    srv.listen({ port: args.port, host: '127.0.0.1' }, () => {
      srv.off('error', reject)
      resolve()
    })
  }).catch((err: unknown) => {
    throw new RunnerError('LISTEN_FAILED', `cannot listen on 127.0.0.1:${args.port}: ${messageOf(err)}`, { cause: err })
  })
  phase = 'serving'
  process.off('beforeExit', onBeforeExit)
  if (stopping) return // a signal arrived while we were binding

  const address = srv.address()
  const port = typeof address === 'object' && address ? address.port : args.port
  // Push readiness (CONTRACT.md §2); a parent that has already gone is handled by 'disconnect'.
  process.send?.({ type: 'ready', port }, undefined, undefined, () => {})
}

process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
if (process.send) {
  // The parent gateway died or let go: leave with it (no orphans, CONTRACT.md §2). The channel
  // must not keep the process alive by itself, or a worker whose server closed would linger.
  process.on('disconnect', shutdown)
  process.channel?.unref()
}
process.on('beforeExit', onBeforeExit)
run().catch(fail)
