import { readdir, readFile } from 'node:fs/promises'
import { GatewayError } from '../../core/index.js'

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
  /** A user for one more process; throws CAPACITY_EXHAUSTED when every uid of a range is in use. */
  take(): WorkerUser
  /** The process of user has exited: with a range, anything left under its uid is killed and the uid freed. */
  give(user: WorkerUser): Promise<void>
}

export function createWorkerUsers(settings: WorkerUserSettings): WorkerUsers {
  const { min, max } = settings.uids
  const isShared = min === max
  const inUse = new Set<number>()
  return {
    take() {
      if (isShared) return { uid: min, gid: settings.gid }
      for (let uid = min; uid <= max; uid++) {
        if (inUse.has(uid)) continue
        inUse.add(uid)
        return { uid, gid: settings.gid }
      }
      throw new GatewayError('CAPACITY_EXHAUSTED', 503, `every worker uid of WORKER_UID ${min}-${max} is in use`, { retryAfterSeconds: 1 })
    },
    async give({ uid }) {
      if (isShared) return
      // A process the worker started (a stdio MCP server) would otherwise live on under a uid the
      // next worker, maybe another org's, is given.
      await killProcessesOf(uid)
      inUse.delete(uid)
    },
  }
}

async function killProcessesOf(uid: number): Promise<void> {
  const pids = (await readdir('/proc').catch(() => [])).filter((name) => /^\d+$/.test(name))
  await Promise.all(
    pids.map(async (pid) => {
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
      const real = /^Uid:\s+(\d+)/m.exec(status)?.[1]
      if (real !== undefined && Number(real) === uid) {
        try {
          process.kill(Number(pid), 'SIGKILL')
        } catch {
          // Gone meanwhile.
        }
      }
    }),
  )
}
