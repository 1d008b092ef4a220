// Small, generic helpers for tests that run real child processes (STYLE.md §11): every child is
// tracked and waits are armed at spawn time. A child still running when its test ends is stopped
// the way the gateway stops a worker (SIGTERM), and given a bounded time to leave, then SIGKILLed;
// `liveChildren()` names any that did not leave by themselves (a leak), and `killAll()` removes the rest.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { onTestFinished } from 'vitest'
import { workerBaseEnv } from '../../src/config.js'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
/** The SDK v2 runner as the gateway starts it (built by `npm run build`). */
export const RUNNER_PATH = resolve(ROOT, 'sdk/dist/runner.cjs')
export const EXAMPLES_DIR = resolve(ROOT, 'examples/plugins')
export const FIXTURES_DIR = resolve(ROOT, 'test/fixtures/plugins')

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface Spawned {
  child: ChildProcess
  /** Settles when the process has exited and its output is all read; armed at spawn. */
  exited: Promise<Exit>
  stdout(): string
  stderr(): string
  /** Resolves once stdout contains `text`; rejects if the process exits first. */
  waitForStdout(text: string): Promise<void>
}

const live = new Set<ChildProcess>()

// A runner leaves within its own 3 s shutdown deadline; this leaves room for a loaded machine.
const STOP_BOUND_MS = 10_000

/** The contract's minimal worker environment (CONTRACT.md §2) plus `extra`. */
export function workerEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = workerBaseEnv({ TMPDIR: '/tmp', ...process.env, NODE_ENV: 'test' })
  for (const [key, value] of Object.entries(extra)) if (value !== undefined) env[key] = value
  return env
}

/** Spawns `node <args>` with piped output, tracked until it exits. */
export function spawnNode(args: readonly string[], options: SpawnOptions & { ipc?: boolean } = {}): Spawned {
  const { ipc, ...rest } = options
  const child = spawn(process.execPath, args, {
    stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    ...rest,
  })
  live.add(child)
  child.once('exit', () => live.delete(child))
  onTestFinished(() => stopGracefully(child))
  let out = ''
  let err = ''
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s))
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s))
  // After 'exit', also wait for stdout/stderr to end, so every byte the child wrote is collected.
  // (Not the child's 'close': after a parent-side disconnect() it does not always come.)
  const exited = waitForExit(child).then(async (exit) => {
    await Promise.all([child.stdout, child.stderr].map((stream) => (!stream || stream.closed ? undefined : once(stream, 'close'))))
    return exit
  })
  const waitForStdout = (text: string) =>
    new Promise<void>((resolvePromise, reject) => {
      const check = () => {
        if (!out.includes(text)) return
        child.stdout?.off('data', check)
        resolvePromise()
      }
      child.stdout?.on('data', check) // after the collector above, so `out` is already updated
      void exited.then(() => reject(new Error(`exited before printing ${JSON.stringify(text)}`)))
      check()
    })
  return { child, exited, stdout: () => out, stderr: () => err, waitForStdout }
}

export interface RunnerOptions {
  pluginDir: string
  port: number
  orgId?: string
  /** HAY_ORG_CONFIG's `config` (default `{}`); pass `env: { HAY_ORG_CONFIG: undefined }` to send none. */
  config?: Record<string, unknown>
  auth?: { methodId: string; credentials: Record<string, unknown> }
  env?: Record<string, string | undefined>
  /** Spawn with an IPC channel (as the gateway does). Default true. */
  ipc?: boolean
  /** Replace the standard argv entirely. */
  args?: readonly string[]
}

export interface RunnerProcess extends Spawned {
  port: number
  /** The IPC ready message; rejects if the process exits first. Armed at spawn. */
  ready: Promise<{ type: 'ready'; port: number }>
  url(path: string): string
}

export function spawnRunner(options: RunnerOptions): RunnerProcess {
  const orgId = options.orgId ?? 'org-1'
  const args = options.args ?? [
    RUNNER_PATH,
    `--plugin-path=${options.pluginDir}`,
    `--org-id=${orgId}`,
    `--port=${options.port}`,
    '--mode=production',
  ]
  const env = workerEnv({
    HAY_ORG_CONFIG: JSON.stringify({ org: { id: orgId }, config: options.config ?? {} }),
    HAY_ORG_AUTH: options.auth ? JSON.stringify(options.auth) : undefined,
    ...options.env,
  })
  const spawned = spawnNode(args, { env, ipc: options.ipc ?? true })
  const ready = new Promise<{ type: 'ready'; port: number }>((resolvePromise, reject) => {
    spawned.child.on('message', (msg: unknown) => {
      if (typeof msg === 'object' && msg !== null && (msg as { type?: unknown }).type === 'ready') {
        resolvePromise(msg as { type: 'ready'; port: number })
      }
    })
    void spawned.exited.then((exit) =>
      reject(new Error(`runner exited (${exit.signal ?? exit.code}) before ready; stderr: ${spawned.stderr()}`)),
    )
  })
  ready.catch(() => {}) // observed by the tests that await it; others only care about exit
  return { ...spawned, port: options.port, ready, url: (path) => `http://127.0.0.1:${options.port}${path}` }
}

/**
 * Spawns the runner on port 0 and waits for its IPC ready message, which names the port the OS gave
 * it: no window between picking a free port and binding it for another process to take it.
 */
export async function startRunner(options: Omit<RunnerOptions, 'port' | 'ipc'>): Promise<RunnerProcess> {
  const runner = spawnRunner({ ...options, port: 0 })
  const { port } = await runner.ready
  return { ...runner, port, url: (path) => `http://127.0.0.1:${port}${path}` }
}

/** Resolves once `child` has exited (immediately if it already has). */
export function waitForExit(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  }
  return once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
}

/** True while a process with this pid exists (a zombie counts until its parent reaps it). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * The TCP ports a process is listening on (Linux /proc): its socket inodes from /proc/<pid>/fd,
 * matched against the LISTEN (0A) rows of /proc/net/tcp and tcp6.
 */
export function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (match) inodes.add(match[1] as string)
    } catch {
      // closed between the listing and the read
    }
  }
  const ports: number[] = []
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const row of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = row.trim().split(/\s+/)
      if (cols[3] === '0A' && inodes.has(cols[9] as string)) ports.push(parseInt((cols[1] as string).split(':')[1] as string, 16))
    }
  }
  return ports.sort((a, b) => a - b)
}

/** Pids of children that outlived SIGTERM + STOP_BOUND_MS: killed, and named by liveChildren() as leaks. */
const outlived = new Set<number | undefined>()

/** SIGTERM, then up to STOP_BOUND_MS for the exit; a child still running after that is SIGKILLed and reported as a leak. */
async function stopGracefully(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  let timer: NodeJS.Timeout | undefined
  const exited = waitForExit(child)
  const hasExited = await Promise.race([
    exited.then(() => true),
    new Promise<false>((resolve) => (timer = setTimeout(resolve, STOP_BOUND_MS, false))),
  ])
  clearTimeout(timer)
  if (hasExited) return
  // Killed here, not left behind: a test run that fails must not leave a hung gateway running on the machine.
  outlived.add(child.pid)
  child.kill('SIGKILL')
  await exited
}

/** SIGKILLs every tracked child still running and waits for each to exit. */
export async function killAll(): Promise<void> {
  outlived.clear()
  await Promise.all(
    [...live].map((child) => {
      const exited = waitForExit(child)
      child.kill('SIGKILL')
      return exited
    }),
  )
}

/** Pids of tracked children that have not exited yet, and of those killed for outliving SIGTERM. */
export const liveChildren = (): Array<number | undefined> => [...outlived, ...[...live].map((c) => c.pid)]
