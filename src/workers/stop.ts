import type { Clock } from '../core/index.js'
import { withDeadline } from '../core/index.js'
import type { ExitInfo, Worker } from './types.js'

export interface StopOptions {
  clock: Clock
  disableTimeoutMs: number
  stopTimeoutMs: number
}

/**
 * CONTRACT.md §5: POST /disable (bounded) → SIGTERM → wait stopTimeoutMs → SIGKILL.
 * Resolves with how the process exited; safe to call on a process that already exited.
 */
export async function stopProcess(worker: Worker, exited: Promise<ExitInfo>, opts: StopOptions): Promise<ExitInfo> {
  const { child } = worker
  if (child.exitCode === null && child.signalCode === null) {
    if (worker.sdkVersion === 'v2') {
      await withDeadline(opts.clock, opts.disableTimeoutMs, async (signal) => {
        const res = await worker.dispatcher.request({ method: 'POST', path: '/disable', signal })
        await res.body.dump()
      }).catch(() => {}) // best effort: a worker that cannot run onDisable is still stopped
    }
    child.kill('SIGTERM')
    await withDeadline(opts.clock, opts.stopTimeoutMs, () => exited).catch(() => child.kill('SIGKILL'))
  }
  const exit = await exited
  await worker.dispatcher.destroy()
  return exit
}
