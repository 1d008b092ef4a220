import { PrewarmedMessage } from '../contract/index.js'
import type { Logger } from '../core/index.js'
import type { Proc } from './launch.js'

export interface PrewarmPool {
  /** A booted runner waiting for its plugin, if one is ready. */
  take(): Proc | undefined
  /**
   * Tops the pool up. Called once the cold start that took a runner is over: spawning node costs
   * the parent milliseconds of synchronous work and the new runner's boot competes for the CPU.
   */
  refill(): void
  /** Runners booted and waiting. */
  ready(): number
  /** Kills every waiting runner and stops refilling. Idempotent. */
  close(): Promise<void>
}

export interface PrewarmDeps {
  size: number
  /** Spawns one runner in prewarmed mode (same command, node flags and base env as a worker). */
  spawn(): Proc
  log: Logger
}

// A runner that dies before it is ready this many times in a row stops the refilling: the command
// is broken, and a tight respawn loop would only burn CPU. Fresh spawns still serve every start.
const MAX_CONSECUTIVE_FAILURES = 3

/**
 * Keeps `size` runners booted with the SDK loaded (DESIGN.md: prewarmed pool), so a cold start
 * skips node's own start-up. Each runner is used once, for one (org, plugin).
 */
export function createPrewarmPool(deps: PrewarmDeps): PrewarmPool {
  const waiting = new Set<{ proc: Proc; isReady: boolean }>()
  let failures = 0
  let closed = false

  function fill(): void {
    while (!closed && waiting.size < deps.size && failures < MAX_CONSECUTIVE_FAILURES) {
      const entry = { proc: deps.spawn(), isReady: false }
      waiting.add(entry)
      const onMessage = (msg: unknown) => {
        if (!PrewarmedMessage.safeParse(msg).success) return
        entry.proc.child.off('message', onMessage)
        entry.isReady = true
        failures = 0
      }
      entry.proc.child.on('message', onMessage)
      void entry.proc.exited.then((exit) => {
        entry.proc.child.off('message', onMessage)
        if (!waiting.delete(entry) || closed) return // taken (it is a worker now), or shutting down
        failures++
        deps.log.warn({ ...exit, stderr: entry.proc.stderrTail(), failures }, 'prewarmed runner exited while waiting')
        fill()
      })
    }
  }

  fill()
  return {
    take() {
      for (const entry of waiting) {
        if (!entry.isReady) continue
        waiting.delete(entry)
        return entry.proc
      }
      return undefined
    },
    refill: fill,
    ready: () => [...waiting].filter((e) => e.isReady).length,
    async close() {
      closed = true
      const left = [...waiting]
      waiting.clear()
      for (const { proc } of left) proc.child.kill('SIGKILL')
      await Promise.all(left.map(({ proc }) => proc.exited))
    },
  }
}
