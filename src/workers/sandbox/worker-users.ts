import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { setTimeout as delay, setImmediate as yieldToLoop } from 'node:timers/promises'
import { GatewayError, isGatewayError } from '../../core/index.js'
import { createUidClaims } from './uid-claims.js'

/** The OS users workers run as: one uid for all, or a range that gives each live process its own. */
export interface WorkerUserSettings {
  uids: { min: number; max: number }
  gid: number
}

export interface WorkerUser {
  uid: number
  gid: number
}

export interface WorkerUsers {
  /**
   * A user for one more process: with a range, a uid no other gateway of the host has claimed and no
   * process runs as; throws CAPACITY_EXHAUSTED when there is none.
   */
  take(): WorkerUser
  /**
   * take(), or when every uid is in use, the next uid this gateway gives back: handed over before its
   * claim is released, so no other start, prewarmed runner or gateway of the host gets it first. Once
   * signal aborts, refuses as take() does.
   */
  takeNextGiven(signal: AbortSignal): Promise<WorkerUser>
  /**
   * The process of user has exited: with a range, anything left under its uid is killed, then
   * whileHeld runs (no process of the uid runs then, and none can start), then the uid is freed.
   * couldFork false (a node worker the permission model denies child processes) spares the kill that
   * catches a fork racing the walk: it costs a spawn, beside the next worker's start.
   */
  give(user: WorkerUser, whileHeld?: () => Promise<void>, couldFork?: boolean): Promise<void>
}

export interface WorkerUsersOptions {
  /** Where the uid claims live (tests); the host's claims directory by default. */
  claimsDir?: string
  /**
   * A `kill` binary (procps, util-linux): `kill -9 -1` run as a worker's uid kills every process of
   * that uid at once. Without it a freed uid's processes are found by walking /proc, which misses one
   * forked by a process that exits before the walk reads it.
   */
  killCommand?: string | undefined
}

export function createWorkerUsers(settings: WorkerUserSettings, options: WorkerUsersOptions = {}): WorkerUsers {
  const { min, max } = settings.uids
  if (min === max) {
    return {
      take: () => ({ uid: min, gid: settings.gid }),
      takeNextGiven: async () => ({ uid: min, gid: settings.gid }),
      give: async (_user, whileHeld) => whileHeld?.(),
    }
  }
  const claims = createUidClaims(options.claimsDir)
  const inUse = new Set<number>()
  // Starts waiting for a uid this gateway is giving back, first come first served.
  const waiters = new Set<(user: WorkerUser) => void>()
  function take(): WorkerUser {
    let running: Set<number> | undefined // read from /proc (some ms) only when a claim needs it
    // A process under the uid that is not a gateway's worker (a dead gateway's, still leaving; a user
    // of the host) could be signalled by, or outlive into, the worker we would start.
    const isVacant = (uid: number) => {
      running ??= uidsOfProcesses(min, max)
      return !running.has(uid)
    }
    // From the lowest uid every time: the uids of a host's gateways stay few (each keeps a small
    // claim entry until reboot).
    for (let uid = min; uid <= max; uid++) {
      if (inUse.has(uid) || !claims.claim(uid, () => isVacant(uid))) continue
      inUse.add(uid)
      return { uid, gid: settings.gid }
    }
    throw new GatewayError('CAPACITY_EXHAUSTED', 503, `every worker uid of ${min}-${max} is in use`, { retryAfterSeconds: 1 })
  }
  return {
    take,
    async takeNextGiven(signal) {
      let refusal: GatewayError
      try {
        return take()
      } catch (err) {
        if (!isGatewayError(err) || err.code !== 'CAPACITY_EXHAUSTED') throw err
        refusal = err
      }
      if (signal.aborted) throw refusal
      return new Promise<WorkerUser>((resolve, reject) => {
        const onAbort = () => {
          waiters.delete(handOver)
          reject(refusal)
        }
        const handOver = (user: WorkerUser) => {
          signal.removeEventListener('abort', onAbort)
          resolve(user)
        }
        waiters.add(handOver)
        signal.addEventListener('abort', onAbort, { once: true })
      })
    },
    async give({ uid, gid }, whileHeld, couldFork = true) {
      // A process the worker started (a stdio MCP server) would otherwise live on under a uid the
      // next worker, maybe another org's, is given.
      if (!(await killProcessesOf({ uid, gid }, couldFork ? options.killCommand : undefined))) {
        inUse.delete(uid) // still claimed: no gateway of the host gives it while this one lives
        throw new GatewayError('INTERNAL', 500, `processes of worker uid ${uid} did not die: the uid is not given again`)
      }
      try {
        await whileHeld?.()
      } finally {
        const [next] = waiters // nothing of the uid runs now: it goes on, still claimed, to a waiting start
        if (next) {
          waiters.delete(next)
          next({ uid, gid })
        } else {
          claims.release(uid)
          inUse.delete(uid)
        }
      }
    },
  }
}

// Reading the /proc/<pid>/status of every process of the host is the cost of freeing a uid. Read
// synchronously, one costs ~20 µs; through fs/promises (open, stat, read, close, each a trip through
// the threadpool and back) ~6 times that in CPU, and the walk ran beside the next worker's start (a
// prewarmed start ~12 ms slower; BENCHMARKS.md). Batches bound how long the event loop is held.
const STATUS_BATCH = 128
// A round of the kill walk takes a few ms: pausing between rounds gives what was killed (a process
// with a large heap takes ms to exit) time to die before the next round looks.
const KILL_ROUNDS = 100
const KILL_ROUND_PAUSE_MS = 10

/** The uids from min to max any process of the host runs under (real, effective, saved or filesystem). */
function uidsOfProcesses(min: number, max: number): Set<number> {
  const found = new Set<number>()
  for (const pid of listPids()) {
    for (const uid of uidsIn(statusOf(pid) ?? '')) if (uid >= min && uid <= max) found.add(uid)
  }
  return found
}

/**
 * Kills every process whose real uid is the user's, again for those they start meanwhile; true once
 * none of them runs (each is dead or a zombie), false when some still ran after many rounds.
 */
async function killProcessesOf(user: WorkerUser, killCommand: string | undefined): Promise<boolean> {
  for (let round = 0; round < KILL_ROUNDS; round++) {
    if (round > 0) await delay(KILL_ROUND_PAUSE_MS) // real time on purpose: pacing, not a deadline
    if (killCommand) await killAllAs(user, killCommand)
    let isAnyRunning = false
    const pids = listPids()
    for (let at = 0; at < pids.length; at += STATUS_BATCH) {
      if (at > 0) await yieldToLoop()
      for (const pid of pids.slice(at, at + STATUS_BATCH)) {
        const status = statusOf(pid)
        if (status === undefined || uidsIn(status)[0] !== user.uid || /^State:\s+[ZX]/m.test(status)) continue
        isAnyRunning = true
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // Gone meanwhile.
        }
      }
    }
    if (!isAnyRunning) return true
  }
  return false
}

/**
 * kill(-1) from a process of the user: the kernel signals every process of that uid while fork() is
 * held off, so a process that forks and exits cannot leave a child behind as it can from a /proc walk.
 */
async function killAllAs(user: WorkerUser, killCommand: string): Promise<void> {
  const child = spawn(killCommand, ['-9', '-1'], { uid: user.uid, gid: user.gid, cwd: '/', env: {}, stdio: 'ignore' })
  // Its status says nothing (ESRCH when nothing was left); a failure to run it leaves the walk to do the work.
  await new Promise<void>((resolve) => {
    child.once('error', () => resolve())
    child.once('close', () => resolve())
  })
}

/** The pids of the host's processes. */
const listPids = (): number[] => readdirSync('/proc').filter(isPid).map(Number)

/** undefined when the process is gone. */
function statusOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return undefined
  }
}

const isPid = (name: string) => /^\d+$/.test(name)

/** Real, effective, saved and filesystem uid from a /proc/<pid>/status. */
const uidsIn = (status: string): number[] => (/^Uid:\s+(.*)$/m.exec(status)?.[1] ?? '').split(/\s+/).filter(Boolean).map(Number)
