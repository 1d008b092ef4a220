import type { ChildProcess, spawn as nodeSpawn } from 'node:child_process'
import { setTimeout as delay } from 'node:timers/promises'
import { Pool } from 'undici'
import { ReadyMessage, type SpecializeMessage } from '../contract/index.js'
import type { Clock, Logger } from '../core/index.js'
import { DeadlineExceeded, errorText, GatewayError, withDeadline } from '../core/index.js'
import type { PoolConfig } from '../config.js'
import { type CommandLine, type Confined, isNodeCommand, type Policy, type Sandbox } from './sandbox/index.js'
import { captureOutput, type LogTarget } from './output.js'
import { buildWorkerEnv } from './worker-env.js'
import type { ExitInfo, WorkerSpec } from './types.js'

export type SpawnFn = typeof nodeSpawn

export interface LaunchDeps {
  config: Pick<
    PoolConfig,
    'runnerCommand' | 'ownRunner' | 'baseEnv' | 'hostEnv' | 'maxOldSpaceMb' | 'maxHeaderBytes' | 'startTimeoutMs' | 'watchdogPath'
  >
  clock: Clock
  spawn: SpawnFn
  sandbox: Sandbox
  log: Logger
}

export interface Launched extends Proc {
  pid: number
  port: number
  dispatcher: Pool
  /** A prewarmed runner became this worker (the pool then refills). */
  prewarmed: boolean
  spawnMs: number
  readyMs: number
}

// Runners that do not push readiness are probed this often: a few ms, not a 500 ms poll.
const PROBE_INTERVAL_MS = 3
const STARTING_PROBE_INTERVAL_MS = 1

/** A spawned process with its exit armed and its stderr tail kept. */
export interface Proc {
  child: ChildProcess
  /** Armed at spawn, so an exit is never missed. The sandbox releases what it held (temp dir, user) right after. */
  exited: Promise<ExitInfo>
  /** Settles once the sandbox has released what the process held (its uid given back), after its exit. */
  released: Promise<void>
  stderrTail(): string
  /** Variables the sandbox set (TMPDIR), which nothing handed to the process later may change. */
  sandboxEnv: Record<string, string>
  /** Logs its output and protocol faults to log from now on (a prewarmed runner that became a worker). */
  logTo(log: Logger): void
}

export function spawnProc(deps: Pick<LaunchDeps, 'spawn' | 'clock' | 'log'>, confined: Confined, cwd: string, ipc = true): Proc {
  const { spawn, clock, log } = deps
  const [command, args] = confined.command
  let child: ChildProcess
  try {
    child = spawn(command, args, {
      env: confined.env,
      cwd,
      stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
      ...(confined.user && { uid: confined.user.uid, gid: confined.user.gid }),
    })
  } catch (err) {
    // Thrown, not emitted, when the kernel refuses the command line at once (E2BIG: one variable over
    // 128 KiB, such as a large HAY_ORG_CONFIG): no exit will give back the uid and temp dir it took.
    void confined.release().catch((releaseErr: unknown) => log.warn({ err: releaseErr }, 'sandbox release failed'))
    throw new GatewayError('WORKER_START_FAILED', 503, `worker could not be spawned: ${errorText(err)}`, { cause: err })
  }
  const target: LogTarget = { log }
  if (ipc) guardChannel(child, target)
  const exited = exitOf(child)
  // Not awaited by `exited`: whoever waits for the exit (the pool's crash handling) runs first.
  const released = exited.then(() => confined.release()).catch((err: unknown) => target.log.warn({ err }, 'sandbox release failed'))
  const sandboxEnv: Record<string, string> = confined.env.TMPDIR === undefined ? {} : { TMPDIR: confined.env.TMPDIR }
  const logTo = (to: Logger) => {
    target.log = to
  }
  return { child, exited, released, stderrTail: captureOutput(child, clock, target), sandboxEnv, logTo }
}

/** The command of a prewarmed runner: our runner with the worker's node flags, waiting for its plugin. */
export const prewarmCommand = (config: LaunchDeps['config']): CommandLine => {
  const [command = process.execPath, ...rest] = config.runnerCommand
  return { command, nodeFlags: nodeFlags(config, true), args: [...rest, '--prewarm'] }
}

/** How launchWorker gets its process: a prewarmed runner, or a fresh spawn that may wait for a worker uid. */
export interface LaunchFrom {
  prewarmed?: Proc | undefined
  /** Set: when every worker uid is in use, the spawn waits for the next one freed, until this aborts (Sandbox.confineWhenFreed). */
  uidWait?: AbortSignal | undefined
}

/**
 * Starts the worker for spec on port and resolves once it serves requests. With a prewarmed runner
 * the process already exists: it is told its plugin, org, env additions and port over IPC, which
 * makes it the process a fresh spawn would have been. On any failure the process is killed and
 * awaited before the error is thrown.
 */
export async function launchWorker(
  spec: WorkerSpec,
  port: number,
  deps: LaunchDeps,
  policy: Policy,
  from: LaunchFrom = {},
): Promise<Launched> {
  const { config, clock } = deps
  const { prewarmed, uidWait } = from
  let t0 = clock.now()
  let proc: Proc
  if (prewarmed) {
    proc = prewarmed
    // From here on its lines are this worker's, logged as a fresh spawn's are (orgId, pluginId, gen).
    proc.logTo(deps.log)
    // The prewarmed process started with the base env; it receives exactly what a fresh spawn adds.
    const env = buildWorkerEnv(spec, {}, config.hostEnv, proc.sandboxEnv)
    const specialize: SpecializeMessage = { type: 'specialize', argv: contractArgs(spec, port), env, cwd: spec.pluginDir }
    proc.child.send(specialize)
  } else {
    const env = buildWorkerEnv(spec, config.baseEnv, config.hostEnv, spec.sdkVersion === 'v1' ? { PORT: String(port) } : {})
    // Only our runner uses the IPC channel (readiness, leaving with its parent); it costs any other
    // node process a few ms of its boot, and the watchdog preloaded into those needs none.
    const line = buildCommand(spec, port, config)
    let confined: Confined
    if (uidWait) {
      confined = await deps.sandbox.confineWhenFreed(policy, line, env, uidWait)
      t0 = clock.now() // the wait for a uid is the start's (its total), not the spawn's
    } else {
      confined = deps.sandbox.confine(policy, line, env)
    }
    proc = spawnProc(deps, confined, spec.pluginDir, pushesReadiness(spec, config))
  }
  const { child, exited, stderrTail, logTo } = proc
  const dispatcher = new Pool(`http://127.0.0.1:${port}`, { connections: 64, keepAliveTimeout: 30_000 })
  const spawnMs = clock.now() - t0

  const pushes = pushesReadiness(spec, config)
  const probeStop = new AbortController()
  try {
    await withDeadline(clock, config.startTimeoutMs, (signal) =>
      Promise.race([
        pushes ? readyMessage(child, port, signal) : probeHealth(dispatcher, spec.orgId, probeStop.signal),
        exited.then((exit) => {
          throw startFailed(spec, exit, stderrTail())
        }),
      ]),
    )
  } catch (err) {
    child.kill('SIGKILL')
    await exited
    await dispatcher.destroy()
    if (err instanceof DeadlineExceeded) {
      throw new GatewayError(
        'WORKER_START_TIMEOUT',
        504,
        `worker for ${spec.pluginId} did not become ready within ${config.startTimeoutMs} ms`,
        { cause: err },
      )
    }
    throw err
  } finally {
    probeStop.abort()
  }
  return {
    child,
    pid: child.pid ?? -1,
    port,
    dispatcher,
    exited,
    released: proc.released,
    stderrTail,
    sandboxEnv: proc.sandboxEnv,
    logTo,
    prewarmed: prewarmed !== undefined,
    spawnMs,
    readyMs: clock.now() - t0 - spawnMs,
  }
}

const pushesReadiness = (spec: WorkerSpec, config: LaunchDeps['config']) => spec.sdkVersion === 'v2' && config.ownRunner

/**
 * Node flags for a worker. Our runner leaves with its parent by itself; the watchdog is preloaded
 * only into processes that may not (another runner, a legacy entry), saving our cold start a file load.
 * Node's own header limit (16 KiB) would refuse, with a bare 431, requests the gateway accepted and
 * added its x-forwarded-* to (README: MAX_HEADER_BYTES).
 */
function nodeFlags(config: LaunchDeps['config'], ownRunner: boolean): string[] {
  return [
    ...(ownRunner ? [] : ['--require', config.watchdogPath]),
    ...(config.maxOldSpaceMb ? [`--max-old-space-size=${config.maxOldSpaceMb}`] : []),
    `--max-http-header-size=${config.maxHeaderBytes}`,
  ]
}

/** CONTRACT.md §2: the runner's arguments for one (org, plugin) on port. */
const contractArgs = (spec: WorkerSpec, port: number): string[] => [
  `--plugin-path=${spec.pluginDir}`,
  `--org-id=${spec.orgId}`,
  `--port=${port}`,
  '--mode=production',
]

function buildCommand(spec: WorkerSpec, port: number, config: LaunchDeps['config']): CommandLine {
  if (spec.sdkVersion === 'v1') return { command: process.execPath, nodeFlags: nodeFlags(config, false), args: [spec.entryPath] } // CONTRACT.md §2: legacy
  const [command = process.execPath, ...rest] = config.runnerCommand
  // Node flags only go to a node command; any other runner relies on start-up recovery (orphans.ts).
  const flags = isNodeCommand(command) ? nodeFlags(config, config.ownRunner) : []
  return { command, nodeFlags: flags, args: [...rest, ...contractArgs(spec, port)] }
}

/**
 * The IPC channel is our runner's, but the plugin runs in that process and can write to any of its
 * fds. Node parses the channel in the gateway and throws on a line that is not JSON, from a callback
 * nothing can catch: one plugin would end the gateway, and every organization's requests with it. A
 * handle passed over the channel would be opened here (a server passed in is even listened on). The
 * protocol has neither, nor more than a few short messages: a worker that breaks it is killed, and a
 * handle it passed is closed.
 */
// Our runner sends two short messages in its life (prewarmed, ready). More is a flood, which would grow
// the gateway's buffer of an unfinished line, and its parsing, without bound.
const MAX_CHANNEL_BYTES = 64 * 1024

function guardChannel(child: ChildProcess, target: LogTarget): void {
  const broke = (err: unknown, what: string) => {
    target.log.warn({ err, pid: child.pid, what }, 'worker broke the IPC protocol; killing it')
    child.kill('SIGKILL')
  }
  // Node's own reader of the channel: the onread of the pipe handle that `child.channel` wraps, kept under
  // child_process's kChannelHandle symbol (internals, the same on Node 20 to 24; test/faults checks it).
  const handleKey = Object.getOwnPropertySymbols(child).find((key) => key.description === 'kChannelHandle')
  const channel = handleKey && (Reflect.get(child, handleKey) as { onread?: (...args: unknown[]) => unknown } | null | undefined)
  const onread = channel?.onread
  if (channel && typeof onread === 'function') {
    let received = 0
    channel.onread = function guardedRead(this: unknown, ...args: unknown[]) {
      const data = args[0] as ArrayBuffer | undefined // undefined at the end of the channel: passed on
      received += data?.byteLength ?? 0
      if (data && received > MAX_CHANNEL_BYTES) {
        if (received - data.byteLength <= MAX_CHANNEL_BYTES) broke(undefined, `more than ${MAX_CHANNEL_BYTES} bytes`)
        return
      }
      try {
        return onread.apply(this, args)
      } catch (err) {
        broke(err, 'a message that is not JSON')
      }
    }
  }
  child.on('message', (_message: unknown, handle?: unknown) => {
    if (handle === undefined) return
    const h = handle as { destroy?: () => void; close?: () => void }
    if (typeof h.destroy === 'function') h.destroy()
    else h.close?.()
    broke(undefined, 'a handle')
  })
}

function exitOf(child: ChildProcess): Promise<ExitInfo> {
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
    // A command that cannot be spawned (ENOENT) emits 'error' and never 'exit'.
    child.once('error', () => {
      if (child.pid === undefined) resolve({ code: null, signal: null })
    })
  })
}

/** The port was free when checked but taken before the worker bound it: worth another port. */
export class PortInUseError extends Error {
  override readonly name = 'PortInUseError'
  readonly code = 'PORT_IN_USE'
}

/** A worker that exited before it served: a port lost to a race, else WORKER_START_FAILED with its stderr's reason. */
export function startFailed(spec: WorkerSpec, exit: ExitInfo, stderr: string): Error {
  if (/EADDRINUSE/.test(stderr)) return new PortInUseError(`port taken before ${spec.pluginId}'s worker could bind it`)
  const how = exit.signal ? `signal ${exit.signal}` : exit.code === null ? 'could not be spawned' : `code ${exit.code}`
  const detail = stderr ? `: ${startFailureReason(stderr)}` : ''
  return new GatewayError('WORKER_START_FAILED', 503, `worker for ${spec.pluginId} exited during start (${how})${detail}`)
}

// A line that says why: our runner's `plugin-runner: init failed: …`, a thrown error's `Error: …`,
// `TypeError [ERR_X]: …` or `EACCES: …` (also after another runner's own prefix), a bare `ERR_…` code.
const ERROR_LINE = /^plugin-runner: |(?:^|[\s:])(?:[A-Z]\w*)?Error(?: \[\w+\])?: |(?:^|\s)E[A-Z]{2,}: |\bERR_[A-Z_]+\b/
// What Node's dump of an uncaught error prints of its properties, below the stack: `  code: 'ERR_ACCESS_DENIED',`.
const ERROR_PROPERTY = /^\s+(?:code|permission|resource|syscall|path): /
// Lines that never say why: blanks, `}`, the `^` marker, `throw err;`, stack frames, `Node.js v20.x`.
const NOISE = /^\s*$|^[\s{}^]+$|^\s*throw \w+;?$|^\s+at |^Node\.js v\d|^node:internal\//
const MAX_REASON_LINES = 4
const MAX_LINE_CHARS = 300

/**
 * Why a worker died during start, from its stderr: the last error line and the properties Node prints
 * under it (code, permission, path), else the last lines that are not noise. Node follows an uncaught
 * error with its stack, its properties, `}`, a blank line and its version: a plain tail keeps only those.
 */
function startFailureReason(stderr: string): string {
  const lines = stderr.split('\n')
  const errorAt = lines.findLastIndex((line) => ERROR_LINE.test(line) && !ERROR_PROPERTY.test(line) && !NOISE.test(line))
  const reason =
    errorAt >= 0
      ? [lines[errorAt] as string, ...lines.slice(errorAt + 1).filter((line) => ERROR_PROPERTY.test(line))]
      : lines.filter((line) => !NOISE.test(line)).slice(-3)
  return reason
    .slice(0, MAX_REASON_LINES)
    .map((line) => line.trim().replace(/,$/, '').slice(0, MAX_LINE_CHARS))
    .join(' | ')
}

function readyMessage(child: ChildProcess, port: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (msg: unknown) => {
      const parsed = ReadyMessage.safeParse(msg)
      if (parsed.success && parsed.data.port === port) done()
    }
    const done = () => {
      child.off('message', onMessage)
      signal.removeEventListener('abort', done)
      resolve()
    }
    child.on('message', onMessage)
    signal.addEventListener('abort', done, { once: true })
  })
}

// Pacing uses real time on purpose: it is transport polling, not a deadline (the deadline runs on the clock).
async function probeHealth(dispatcher: Pool, orgId: string, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    let answered = false
    try {
      const res = await dispatcher.request({ method: 'GET', path: '/health', signal, headersTimeout: 1_000 })
      answered = true
      const body = await res.body.text()
      if (res.statusCode === 200 && servesOrg(body, orgId)) return
    } catch {
      // Not listening yet (ECONNREFUSED) or aborted: try again after the interval.
    }
    // Listening but not started yet: its onStart may end any moment, and asking again costs one
    // request on the kept-alive connection, not a connect.
    await delay(answered ? STARTING_PROBE_INTERVAL_MS : PROBE_INTERVAL_MS, undefined, { signal }).catch(() => {})
  }
}

/**
 * Hay's runner answers /health as soon as it listens, before its onStart has run (no MCP tools yet,
 * /config-update refused); until then its body says `"orgId": null`. A /health that names an org is
 * ready once it names this one; one that names none (or is not JSON) is ready on its 200.
 */
function servesOrg(body: string, orgId: string): boolean {
  let health: unknown
  try {
    health = JSON.parse(body)
  } catch {
    return true // not JSON: nothing says it is still starting
  }
  return typeof health !== 'object' || health === null || !('orgId' in health) || health.orgId === orgId
}
