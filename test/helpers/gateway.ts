import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { chmod, cp, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { expect, onTestFinished, vi } from 'vitest'
import { loadConfig } from '../../src/config.js'
import type { Clock, Logger } from '../../src/core/index.js'
import { silentLogger } from '../../src/core/index.js'
import { createInstancesRepo, createPluginsRepo, openDatabase } from '../../src/db/index.js'
import { startGateway, type RunningGateway } from '../../src/node/gateway.js'
import type { SpawnFn } from '../../src/workers/index.js'

export const ROOT = resolve(import.meta.dirname, '..', '..')
export const EXAMPLES_DIR = join(ROOT, 'examples', 'plugins')
export const FIXTURES_DIR = join(ROOT, 'test', 'fixtures', 'plugins')
/** SECRET_KEY of every test gateway unless a test passes its own (or null for none). */
export const TEST_SECRET_KEY = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff'

export interface TestGateway {
  gw: RunningGateway
  url: string
  dir: string
  /**
   * Every worker process, in the order each became one: a fresh spawn at once, a prewarmed runner
   * when the gateway hands it its plugin (the first message it sends that runner). Counted around
   * the real spawn.
   */
  spawned: ChildProcess[]
  /** Whose worker each was, in the same order: the org from HAY_ORG_CONFIG, the plugin dir's name. */
  spawnedFor: Array<{ orgId: string; pluginId: string }>
  /** Every process the gateway spawned, prewarmed runners still waiting for a plugin included. */
  processes: ChildProcess[]
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON the admin API answers
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>
  enable(orgId: string, pluginId: string, config?: Record<string, unknown>): Promise<void>
  /** Reads the instance row from the database file itself, after flushing pending writes. */
  instanceRow(orgId: string, pluginId: string): Promise<Awaited<ReturnType<ReturnType<typeof createInstancesRepo>['get']>>>
  pluginRow(pluginId: string): Promise<Awaited<ReturnType<ReturnType<typeof createPluginsRepo>['get']>>>
}

export interface TestGatewayOptions {
  env?: Record<string, string>
  clock?: Clock
  /** Plugin directories; defaults to the bundled examples plus the fault fixtures. */
  pluginDirs?: string[]
  /** Reuse a directory (and its database) from an earlier gateway. */
  dir?: string
  /** SECRET_KEY; defaults to TEST_SECRET_KEY, null starts the gateway without one. */
  secretKey?: string | null
  /** The gateway's logger; silent by default. */
  log?: Logger
}

/** A temp directory removed after the test; optionally seeded with copies of plugin dirs. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'plugin-gateway-test-'))
  // Workers of a root gateway run as other users (a range of uids): plugins copied here must be reachable.
  await chmod(dir, 0o755)
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/**
 * Copies a plugin into toDir/id. The SDK is linked into node_modules beside toDir, so the copy
 * resolves '@plugin-gateway/sdk' the way an installed plugin would.
 */
export async function copyPlugin(from: string, toDir: string, id: string): Promise<string> {
  const target = join(toDir, id)
  await cp(from, target, { recursive: true })
  const scope = join(dirname(toDir), 'node_modules', '@plugin-gateway')
  await mkdir(scope, { recursive: true })
  await symlink(join(ROOT, 'sdk'), join(scope, 'sdk')).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err
  })
  return target
}

/**
 * Starts a real gateway (real libSQL file, real worker processes, real HTTP on an ephemeral port).
 * Teardown closes it and asserts that no worker process it spawned is left running.
 */
export async function startTestGateway(opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const dir = opts.dir ?? (await tempDir())
  const dbUrl = `file:${join(dir, 'gateway.db')}`
  const config = loadConfig({
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    PORT: '0',
    DATABASE_URL: dbUrl,
    PLUGINS_DIR: (opts.pluginDirs ?? [EXAMPLES_DIR, FIXTURES_DIR]).join(':'),
    METADATA_BACKOFF_MS: '5,10,20',
    METADATA_TIMEOUT_MS: '2000',
    STOP_TIMEOUT_MS: '2000',
    RESTART_BACKOFF_MS: '0',
    LOG_LEVEL: 'silent',
    ...(opts.secretKey !== null && { SECRET_KEY: opts.secretKey ?? TEST_SECRET_KEY }),
    ...opts.env,
  })
  const spawned: ChildProcess[] = []
  const spawnedFor: Array<{ orgId: string; pluginId: string }> = []
  const processes: ChildProcess[] = []
  const becameWorker = (child: ChildProcess, how: { cwd?: string; env?: Record<string, string> }) => {
    const orgConfig = JSON.parse(how.env?.HAY_ORG_CONFIG ?? '{}') as { org?: { id?: string } }
    spawnedFor.push({ orgId: orgConfig.org?.id ?? '?', pluginId: basename(how.cwd ?? '?') })
    spawned.push(child)
  }
  const countingSpawn = ((command: string, args: readonly string[], options: { cwd?: string; env?: Record<string, string> }) => {
    const child = spawn(command, args, options)
    processes.push(child)
    if (!args.includes('--prewarm')) becameWorker(child, options)
    else {
      // A prewarmed runner is told its worker's cwd and env additions in the one message it gets.
      const send = child.send.bind(child) as (message: unknown, ...rest: unknown[]) => boolean
      child.send = ((message: unknown, ...rest: unknown[]) => {
        if (!spawned.includes(child)) becameWorker(child, message as { cwd?: string; env?: Record<string, string> })
        return send(message, ...rest)
      }) as ChildProcess['send']
    }
    return child
  }) as SpawnFn
  const gw = await startGateway({ config, log: opts.log ?? silentLogger, spawn: countingSpawn, ...(opts.clock && { clock: opts.clock }) })
  const reader = await openDatabase({ url: dbUrl, log: silentLogger })
  const clock = opts.clock ?? { now: Date.now, setTimer: () => () => {} }
  const instances = createInstancesRepo(reader.db, clock)
  const plugins = createPluginsRepo(reader.db, clock)

  onTestFinished(async () => {
    // A close that fails must not leave the reader or any worker behind either.
    const closeError = await gw.close().then(
      () => null,
      (err: unknown) => err,
    )
    reader.close()
    const alive = processes.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => c.pid)
    if (alive.length > 0) {
      for (const c of processes) c.kill('SIGKILL')
      throw new Error(`worker processes left running after close: ${alive.join(', ')}`)
    }
    if (closeError) throw closeError
  })
  // Users run with a booted prewarmed pool (the default PREWARM_POOL_SIZE): so does every test's
  // first cold start, instead of racing the pool's boot. A sandboxed pool boots runners for a plugin
  // once one of its workers has started.
  if (config.pool.prewarmPoolSize > 0 && config.pool.ownRunner && !config.pool.sandbox.enabled) {
    await vi.waitFor(() => expect(gw.pool.prewarmed()).toBe(config.pool.prewarmPoolSize), { timeout: 15_000, interval: 5 })
  }

  async function admin(method: string, path: string, body?: unknown) {
    const res = await fetch(`${gw.url}/admin${path}`, {
      method,
      headers: {
        ...(body !== undefined && { 'content-type': 'application/json' }),
        ...(config.adminToken && { authorization: `Bearer ${config.adminToken}` }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    })
    const text = await res.text()
    return { status: res.status, body: text ? JSON.parse(text) : null }
  }

  return {
    gw,
    url: gw.url,
    dir,
    spawned,
    spawnedFor,
    processes,
    admin,
    async enable(orgId, pluginId, cfg) {
      const res = await admin('PUT', `/orgs/${orgId}/plugins/${pluginId}`, { enabled: true, ...(cfg && { config: cfg }) })
      if (res.status !== 200) throw new Error(`enable ${orgId}/${pluginId} failed: ${res.status} ${JSON.stringify(res.body)}`)
    },
    async instanceRow(orgId, pluginId) {
      await gw.flush()
      return instances.get(orgId, pluginId)
    },
    async pluginRow(pluginId) {
      return plugins.get(pluginId)
    },
  }
}

/**
 * A sandboxed prewarmed runner may read one plugin's files only, so it is booted for a plugin once a
 * worker of it has started: starts one (org "warm-up", requesting path) and waits for the runner
 * booted for the next worker of pluginId.
 */
export async function warmUp(t: TestGateway, pluginId: string, path: string, config?: Record<string, unknown>): Promise<void> {
  await t.enable('warm-up', pluginId, config)
  const res = await fetch(`${t.url}/orgs/warm-up/plugins/${pluginId}${path}`)
  expect(res.status).toBe(200)
  await res.body?.cancel()
  await vi.waitFor(() => expect(t.gw.pool.prewarmed()).toBe(1), { timeout: 10_000, interval: 5 })
}

/** Resolves with how a child exited; at once if it already has. */
export function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
}

/** True while pid runs; a zombie (exited, not yet reaped by whoever adopted it) counts as gone. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}
