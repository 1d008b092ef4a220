#!/usr/bin/env node
// The SDK v2 runner (CONTRACT.md §2): one process per organization × plugin.
//
//   node sdk/dist/runner/main.js --plugin-path=<abs dir> --org-id=<orgId> --port=<port> --mode=production
//
// Order: manifest → import entry (while worker.ts loads) → org env → onInitialize → onStart →
// listen on 127.0.0.1 → IPC {"type":"ready","port"}. Exit 1: init failed; exit 2: could not serve; exit 0: SIGTERM,
// SIGINT or parent IPC disconnect. This entry reads input and wires; worker.ts is the rest of the
// cold-start path (see its header for why there are so few modules).
import { readFileSync, statSync } from 'node:fs'
import { basename, join, resolve, sep } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { HayGlobalContext, HayPluginDefinition } from '../types.js'
import type { OrgData, Worker } from './worker.js'

// Started before anything else and awaited only once the plugin's own import is under way: the two
// module loads overlap, which takes about 2 ms off every cold start (measured).
const workerModule = import('./worker.js')
workerModule.catch(() => {}) // a failure is rethrown where it is awaited, in run()

const MAX_BODY_BYTES = 5 * 1024 * 1024
// The gateway escalates to SIGKILL 5 s after SIGTERM (CONTRACT.md §5); finish well inside that.
const SHUTDOWN_DEADLINE_MS = 3_000

// ---------------------------------------------------------------------------------------------
// Errors: a stable code for every way the runner can fail; the gateway and tests branch on the
// exit code and the code, never on the message.
// ---------------------------------------------------------------------------------------------

type RunnerErrorCode =
  | 'BAD_ARGS'
  | 'MANIFEST_INVALID'
  | 'ENTRY_NOT_FOUND'
  | 'ENTRY_LOAD_FAILED'
  | 'NO_DEFAULT_EXPORT'
  | 'PLUGIN_INVALID'
  | 'INIT_FAILED'
  | 'ORG_ENV_INVALID'
  | 'START_FAILED'
  | 'NEVER_SETTLED'
  | 'LISTEN_FAILED'

class RunnerError extends Error {
  override readonly name = 'RunnerError'
  constructor(
    readonly code: RunnerErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

/** 1: the plugin could not be initialised (bad input, a hook threw); 2: it could not be served. */
const exitCodeFor = (code: RunnerErrorCode): 1 | 2 => (code === 'LISTEN_FAILED' ? 2 : 1)

// Also in worker.ts; repeated here because they are needed before worker.ts has loaded.
const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err))
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

// ---------------------------------------------------------------------------------------------
// Input: argv, manifest, entry module, org environment
// ---------------------------------------------------------------------------------------------

interface RunnerArgs {
  pluginPath: string
  orgId: string
  port: number
  mode: 'production' | 'test'
}

const FLAGS = ['--plugin-path', '--org-id', '--port', '--mode']

/**
 * Hay's argv: `--plugin-path=… --org-id=… --port=… [--mode=production|test]`; `--flag value` works
 * too. Unknown arguments are rejected, as Hay's runner does. Port 0 asks the OS for a free port;
 * the ready message then carries the real one.
 */
function parseArgs(argv: readonly string[]): RunnerArgs {
  const values = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg : arg.slice(0, eq)
    if (!FLAGS.includes(name)) throw new RunnerError('BAD_ARGS', `unknown argument: ${arg}`)
    // Split on the first '=' only: a path may itself contain '='.
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1)
    if (!value) throw new RunnerError('BAD_ARGS', `${name} requires a value`)
    values.set(name, value)
  }
  const pluginPath = values.get('--plugin-path')
  const orgId = values.get('--org-id')
  const portText = values.get('--port')
  if (!pluginPath) throw new RunnerError('BAD_ARGS', 'missing required argument: --plugin-path')
  if (!orgId) throw new RunnerError('BAD_ARGS', 'missing required argument: --org-id')
  if (!portText) throw new RunnerError('BAD_ARGS', 'missing required argument: --port')
  const port = Number(portText)
  if (!/^\d+$/.test(portText) || port > 65_535) throw new RunnerError('BAD_ARGS', `invalid port: ${portText}`)
  const mode = values.get('--mode') ?? 'production'
  if (mode !== 'production' && mode !== 'test') throw new RunnerError('BAD_ARGS', `invalid mode: ${mode} (expected production or test)`)
  return { pluginPath, orgId, port, mode }
}

interface Manifest {
  /** Plugin id: the directory's name (CONTRACT.md §1). */
  pluginId: string
  pluginDir: string
  displayName: string
  entryPath: string
  /** `hay-plugin.env`: the only host variables config fields may fall back to. */
  envAllowList: ReadonlySet<string>
}

/**
 * `hay-plugin` from the plugin's package.json. Only what running needs is checked (an object with
 * a string `entry` inside the plugin directory); the gateway validates the rest.
 */
function loadManifest(pluginPath: string): Manifest {
  const pluginDir = resolve(pluginPath)
  const file = join(pluginDir, 'package.json')
  let pkg: unknown
  try {
    pkg = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new RunnerError('MANIFEST_INVALID', `cannot read ${file}: ${messageOf(err)}`, { cause: err })
  }
  const block = isRecord(pkg) ? pkg['hay-plugin'] : undefined
  if (!isRecord(block)) throw new RunnerError('MANIFEST_INVALID', `${file} has no "hay-plugin" object`)
  const entry = block.entry
  if (typeof entry !== 'string' || entry === '') {
    throw new RunnerError('MANIFEST_INVALID', `${file}: "hay-plugin".entry must be a non-empty string`)
  }
  const entryPath = resolve(pluginDir, entry)
  if (!entryPath.startsWith(pluginDir + sep)) {
    throw new RunnerError('MANIFEST_INVALID', `entry ${entry} is outside the plugin directory`)
  }
  const env = block.env
  const displayName = block.displayName
  return {
    pluginId: basename(pluginDir),
    pluginDir,
    displayName: typeof displayName === 'string' ? displayName : basename(pluginDir),
    entryPath,
    envAllowList: new Set(Array.isArray(env) ? env.filter((v): v is string => typeof v === 'string') : []),
  }
}

const HOOKS = ['onInitialize', 'onStart', 'onValidateAuth', 'onConfigUpdate', 'onDisable', 'onEnable'] as const

/**
 * As Hay's loader: the default export is a factory (what defineHayPlugin returns), called with the
 * global context, or a definition object. Hooks, when present, must be functions.
 */
async function loadPlugin(
  entryModule: Promise<{ default?: unknown }>,
  entryPath: string,
  globalCtx: HayGlobalContext,
): Promise<HayPluginDefinition> {
  let mod: { default?: unknown }
  try {
    mod = await entryModule
  } catch (err) {
    // Told apart only on this failure path: a stat up front would cost every start a syscall.
    if (!statSync(entryPath, { throwIfNoEntry: false })?.isFile()) {
      throw new RunnerError('ENTRY_NOT_FOUND', `entry file not found: ${entryPath}`, { cause: err })
    }
    throw new RunnerError('ENTRY_LOAD_FAILED', `cannot import ${entryPath}: ${messageOf(err)}`, { cause: err })
  }
  const exported = mod.default
  if (exported === undefined || exported === null) {
    throw new RunnerError('NO_DEFAULT_EXPORT', `${entryPath} has no default export (export default defineHayPlugin(...))`)
  }
  let definition: unknown = exported
  if (typeof exported === 'function') {
    try {
      definition = await (exported as (ctx: HayGlobalContext) => unknown)(globalCtx)
    } catch (err) {
      throw new RunnerError('INIT_FAILED', `plugin factory threw: ${messageOf(err)}`, { cause: err })
    }
  }
  if (!isRecord(definition)) {
    throw new RunnerError('PLUGIN_INVALID', 'the default export must be defineHayPlugin(factory) or a plugin definition object')
  }
  for (const hook of HOOKS) {
    if (definition[hook] !== undefined && typeof definition[hook] !== 'function') {
      throw new RunnerError('PLUGIN_INVALID', `hook ${hook} must be a function`)
    }
  }
  return definition as HayPluginDefinition
}

/**
 * HAY_ORG_CONFIG = {"org":{"id"},"config":{…}}, HAY_ORG_AUTH = {"methodId","credentials"} (optional).
 * Malformed JSON fails the start; a missing HAY_ORG_CONFIG means an empty config for --org-id.
 * Test mode ignores the environment, as in Hay's runner.
 */
function loadOrgData(
  env: NodeJS.ProcessEnv,
  orgId: string,
  mode: RunnerArgs['mode'],
  toAuthState: (value: unknown) => OrgData['auth'],
): OrgData {
  if (mode === 'test') return { org: { id: orgId, name: `Test Org ${orgId}` }, config: {}, auth: null }
  const orgConfig = parseEnvJson(env, 'HAY_ORG_CONFIG')
  if (orgConfig !== undefined && !isRecord(orgConfig)) throw new RunnerError('ORG_ENV_INVALID', 'HAY_ORG_CONFIG must be a JSON object')
  const org = isRecord(orgConfig?.org) ? orgConfig.org : {}
  const config = orgConfig?.config
  return {
    org: {
      id: typeof org.id === 'string' && org.id !== '' ? org.id : orgId,
      ...(typeof org.name === 'string' && { name: org.name }),
    },
    config: isRecord(config) ? config : {},
    auth: toAuthState(parseEnvJson(env, 'HAY_ORG_AUTH')),
  }
}

function parseEnvJson(env: NodeJS.ProcessEnv, name: string): unknown {
  const text = env[name]
  if (text === undefined || text === '') return undefined
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new RunnerError('ORG_ENV_INVALID', `${name} is not valid JSON: ${messageOf(err)}`, { cause: err })
  }
}

// ---------------------------------------------------------------------------------------------
// Process lifecycle
// ---------------------------------------------------------------------------------------------

let phase: 'loading the entry' | 'onInitialize' | 'onStart' | 'serving' = 'loading the entry'
let worker: Worker | undefined
let stopping = false

function fail(err: unknown): never {
  const code = err instanceof RunnerError ? err.code : 'INIT_FAILED'
  const exitCode = exitCodeFor(code)
  process.stderr.write(`plugin-runner: ${exitCode === 2 ? 'runtime' : 'init'} failed: ${code}: ${messageOf(err)}\n`)
  process.exit(exitCode)
}

/** Stop accepting, run onDisable unless /disable already did, drain, exit 0; all bounded. */
function shutdown(): void {
  if (stopping) return
  stopping = true
  setTimeout(() => process.exit(0), SHUTDOWN_DEADLINE_MS).unref()
  if (!worker?.server.listening) process.exit(0) // still starting: nothing to drain or say goodbye to
  const { server } = worker
  const closed = new Promise<void>((resolveClosed) => server.close(() => resolveClosed()))
  server.closeIdleConnections()
  void Promise.all([worker.disable(), closed]).finally(() => process.exit(0))
}

/**
 * If the event loop empties before the worker listens, a hook returned a promise that can never
 * settle. Say so and fail instead of exiting 0 as though all were well.
 */
function onBeforeExit(): void {
  if (phase !== 'serving') fail(new RunnerError('NEVER_SETTLED', `${phase} never settled and nothing else keeps the worker alive`))
}

// ---------------------------------------------------------------------------------------------
// Prewarmed mode: `main.js --prewarm` boots with the minimal base env, loads the runtime, and waits
// for the gateway to hand it one (org, plugin) over IPC. It then becomes exactly the process a
// fresh spawn would have been: same argv, same env additions, same working directory.
// ---------------------------------------------------------------------------------------------

interface Specialize {
  type: 'specialize'
  argv: string[]
  env: Record<string, string>
  cwd: string
}

const isSpecialize = (msg: unknown): msg is Specialize =>
  isRecord(msg) &&
  msg.type === 'specialize' &&
  Array.isArray(msg.argv) &&
  msg.argv.every((a) => typeof a === 'string') &&
  isRecord(msg.env) &&
  Object.values(msg.env).every((v) => typeof v === 'string') &&
  typeof msg.cwd === 'string'

/** Resolves with the argv a specialize message carries, after applying its env and cwd. */
function awaitSpecialization(): Promise<string[]> {
  if (!process.send || !process.channel) throw new RunnerError('BAD_ARGS', '--prewarm needs an IPC channel')
  const channel = process.channel
  channel.ref() // nothing else keeps a waiting process alive
  return new Promise((resolveArgs) => {
    const onMessage = (msg: unknown) => {
      if (!isSpecialize(msg)) return
      process.off('message', onMessage)
      channel.unref()
      Object.assign(process.env, msg.env)
      process.chdir(msg.cwd)
      process.argv.splice(2, Infinity, ...msg.argv)
      resolveArgs(msg.argv)
    }
    process.on('message', onMessage)
    void workerModule.then(warmUp).then(() => process.send?.({ type: 'prewarmed' }, undefined, undefined, () => {}))
  })
}

// The package plugin entries import: resolving it by name during the wait runs (and compiles) the
// loader's package-exports path, and leaves the module cached for the plugin's own import.
const SDK_PACKAGE = '@plugin-gateway/sdk'

/**
 * While it waits, a prewarmed runner loads the SDK and serves itself a few loopback requests
 * through a throwaway worker, so module resolution, node:http's server, parser and socket paths and
 * the worker's own request handling are compiled before the first real request instead of during it.
 * Nothing of it survives: the worker is closed and its registry dropped before specialization.
 */
async function warmUp({ createRegistry, createWorker, createLogger }: typeof import('./worker.js')): Promise<void> {
  await import(SDK_PACKAGE).catch(() => {}) // absent when the runner is used outside its package
  const { get } = await import('node:http')
  const registry = createRegistry()
  registry.register.route('GET', '/warm-up/:id', (req, res) => {
    res.json({ id: req.params.id })
  })
  const w = createWorker({
    definition: { name: 'warm-up' },
    registry,
    orgData: { org: { id: 'warm-up' }, config: {}, auth: null },
    pluginDir: process.cwd(),
    envAllowList: new Set(),
    env: {},
    logger: createLogger({ pluginId: 'warm-up', orgId: 'warm-up' }, false),
    maxBodyBytes: MAX_BODY_BYTES,
  })
  await new Promise<void>((resolveListening) => w.server.listen(0, '127.0.0.1', resolveListening))
  const address = w.server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  for (const path of ['/warm-up/1?q=1', '/health', '/warm-up/2', '/missing']) {
    await new Promise<void>((done) => {
      get({ host: '127.0.0.1', port, path, agent: false }, (res) => res.resume().on('end', done)).on('error', () => done())
    })
  }
  await new Promise<void>((resolveClosed) => w.server.close(() => resolveClosed()))
}

async function run(): Promise<void> {
  const argv = process.argv.slice(2)
  const args = parseArgs(argv.length === 1 && argv[0] === '--prewarm' ? await awaitSpecialization() : argv)
  const manifest = loadManifest(args.pluginPath)
  const entryModule = import(pathToFileURL(manifest.entryPath).href) as Promise<{ default?: unknown }>
  entryModule.catch(() => {}) // a failure is rethrown where it is awaited, in loadPlugin()
  const { createLogger, createRegistry, createWorker, toAuthState } = await workerModule

  const env = process.env
  const orgData = loadOrgData(env, args.orgId, args.mode, toAuthState)
  const logger = createLogger({ pluginId: manifest.pluginId, orgId: orgData.org.id }, env.NODE_ENV === 'development')

  const registry = createRegistry()
  const globalCtx: HayGlobalContext = { register: registry.register, config: { field: (name) => ({ name }) }, logger }
  const definition = await loadPlugin(entryModule, manifest.entryPath, globalCtx)
  phase = 'onInitialize'
  try {
    await definition.onInitialize?.(globalCtx)
  } catch (err) {
    throw new RunnerError('INIT_FAILED', `onInitialize threw: ${messageOf(err)}`, { cause: err })
  }

  phase = 'onStart'
  const { pluginDir, envAllowList } = manifest
  const w = createWorker({ definition, registry, orgData, pluginDir, envAllowList, env, logger, maxBodyBytes: MAX_BODY_BYTES })
  worker = w
  try {
    await definition.onStart?.(w.startCtx)
  } catch (err) {
    throw new RunnerError('START_FAILED', `onStart threw: ${messageOf(err)}`, { cause: err })
  }
  if (stopping) return

  await new Promise<void>((resolveListening, reject) => {
    w.server.once('error', reject)
    // Loopback only: workers are reached through the gateway, never from the network.
    w.server.listen({ port: args.port, host: '127.0.0.1' }, () => {
      w.server.off('error', reject)
      resolveListening()
    })
  }).catch((err: unknown) => {
    throw new RunnerError('LISTEN_FAILED', `cannot listen on 127.0.0.1:${args.port}: ${messageOf(err)}`, { cause: err })
  })
  phase = 'serving'
  process.off('beforeExit', onBeforeExit)

  const address = w.server.address()
  const port = typeof address === 'object' && address ? address.port : args.port
  // Push readiness (CONTRACT.md §2). If the parent is already gone, 'disconnect' handles it.
  process.send?.({ type: 'ready', port }, undefined, undefined, () => {})
}

process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
if (process.send) {
  // The parent gateway died or let go: leave with it (no orphans, CONTRACT.md §2). The channel
  // itself must not keep the process alive, or a worker that stopped serving would linger.
  process.on('disconnect', shutdown)
  process.channel?.unref()
}
process.on('beforeExit', onBeforeExit)
run().catch(fail)
