// Every process the bench starts goes through here: it is tracked by pid until it has exited, its
// descendants (a gateway's workers) are recorded before it is stopped, and `stopAll()` plus
// `leftovers()` let the orchestrator stop everything and then prove, pid by pid, that nothing is left.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { workerBaseEnv } from '../../../src/config.js'

export interface ExitInfo {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface Proc {
  readonly name: string
  readonly pid: number
  readonly child: ChildProcess
  /** Armed at spawn, so a fast exit is never missed. */
  readonly exited: Promise<ExitInfo>
  /** Resolves with the first stdout line matching `re`; rejects on exit or after `timeoutMs`. */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>
  /** Calls `fn` with every complete stdout line from now on; returns an unsubscribe function. */
  onLine(fn: (line: string) => void): () => void
  /** The last few KB of stderr, for error messages. */
  stderrTail(): string
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process and every descendant seen are gone. */
  stop(graceMs?: number): Promise<void>
}

const live = new Set<Proc>()
/** Every pid the bench started or saw as a descendant of one of its processes. */
const seenPids = new Map<number, string>()

/** The minimal environment a worker gets (CONTRACT.md §2), so spawn costs are comparable. */
export function minimalEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = workerBaseEnv({ TMPDIR: '/tmp', ...process.env, NODE_ENV: 'production' })
  for (const [key, value] of Object.entries(extra)) if (value !== undefined) env[key] = value
  return env
}

export function startProcess(
  name: string,
  command: string,
  args: readonly string[],
  opts: { env: NodeJS.ProcessEnv; cwd?: string; stdout?: boolean },
): Proc {
  const child = spawn(command, args, {
    env: opts.env,
    cwd: opts.cwd,
    stdio: ['ignore', opts.stdout === false ? 'ignore' : 'pipe', 'pipe'],
  })
  if (child.pid === undefined) throw new Error(`${name}: could not spawn ${command}`)
  const pid = child.pid
  seenPids.set(pid, name)
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
    child.once('error', () => resolve({ code: null, signal: null }))
  })

  const lineListeners = new Set<(line: string) => void>()
  let partial = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) for (const fn of lineListeners) fn(line)
  })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4096)
  })

  const onLine = (fn: (line: string) => void) => {
    lineListeners.add(fn)
    return () => lineListeners.delete(fn)
  }

  const waitForLine = (re: RegExp, timeoutMs = 15_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => settle(new Error(`${name}: no line matching ${re} within ${timeoutMs} ms`)), timeoutMs)
      const off = onLine((line) => {
        const m = re.exec(line)
        if (m) settle(null, m)
      })
      void exited.then((exit) => settle(new Error(`${name} exited (${JSON.stringify(exit)}) before printing ${re}: ${stderr.trim()}`)))
      let done = false
      function settle(err: Error | null, m?: RegExpExecArray) {
        if (done) return
        done = true
        clearTimeout(timer)
        off()
        if (err) reject(err)
        else resolve(m as RegExpExecArray)
      }
    })

  let stopping: Promise<void> | null = null
  const proc: Proc = {
    name,
    pid,
    child,
    exited,
    waitForLine,
    onLine,
    stderrTail: () => stderr.trim(),
    stop: (graceMs = 15_000) =>
      (stopping ??= (async () => {
        const tree = descendants(pid)
        for (const d of tree) seenPids.set(d, `${name} descendant`)
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM')
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
          await exited
          clearTimeout(timer)
        }
        // A well-behaved parent stopped its children; anything left is killed, pid identity checked by isRunning.
        for (const d of tree) if (isRunning(d)) process.kill(d, 'SIGKILL')
        live.delete(proc)
      })()),
  }
  live.add(proc)
  void exited.then(() => live.delete(proc))
  return proc
}

/** Stops every process still running, newest first. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].reverse().map((p) => p.stop(10_000)))
}

/** Pids the bench started or saw that are still running: must be empty after `stopAll()`. */
export function leftovers(): Array<{ pid: number; name: string }> {
  return [...seenPids].filter(([pid]) => isRunning(pid)).map(([pid, name]) => ({ pid, name }))
}

/** Number of pids tracked so far (for the report's no-orphans line). */
export const trackedPidCount = () => seenPids.size

/** All descendants of pid, read from /proc/<pid>/task/<tid>/children (Linux). */
export function descendants(pid: number): number[] {
  const out: number[] = []
  const visit = (p: number) => {
    let tids: string[]
    try {
      tids = readdirSync(`/proc/${p}/task`)
    } catch {
      return // gone already
    }
    for (const tid of tids) {
      let children = ''
      try {
        children = readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8')
      } catch {
        continue // thread exited while reading
      }
      for (const c of children.split(' ').filter(Boolean).map(Number)) {
        out.push(c)
        visit(c)
      }
    }
  }
  visit(pid)
  return out
}

/** Records descendants of a tracked process as seen, so the final leftover check covers them too. */
export function noteDescendants(proc: Proc): number[] {
  const tree = descendants(proc.pid)
  for (const d of tree) seenPids.set(d, `${proc.name} descendant`)
  return tree
}

/** True while pid runs; a zombie counts as gone. */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

/** Resident set size in bytes (VmRSS of /proc/<pid>/status), or null when the process is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : null
  } catch {
    return null
  }
}

/** CPU time the process has used so far, all threads, in ns (/proc/<pid>/task/<tid>/schedstat); NaN when gone. */
export const cpuNs = (pid: number): number => schedstat(pid, 0)

/** Times the process's threads were put on a CPU so far (schedstat's run periods): how often it was woken. NaN when gone. */
export const runPeriods = (pid: number): number => schedstat(pid, 2)

function schedstat(pid: number, field: number): number {
  let total = 0
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[field])
      } catch {
        // thread exited between the listing and the read
      }
    }
  } catch {
    return NaN
  }
  return total
}
