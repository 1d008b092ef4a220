import { PrewarmedMessage } from '../contract/index.js'
import type { Logger } from '../core/index.js'
import type { Proc } from './launch.js'

/** What a prewarmed runner was started with: only a worker of the same policy may take it. */
export interface PrewarmPolicy {
  readonly key: string
}

export interface PrewarmPool<P extends PrewarmPolicy> {
  /** A booted runner of this policy waiting for its plugin, if one is ready. */
  take(policy: P): Proc | undefined
  /**
   * Called once a cold start of policy is over (spawning node costs the parent milliseconds of
   * synchronous work and the new runner's boot competes for the CPU): replaces the runner that
   * start took, or, when the pool holds none of this policy, boots one, in place of the runner of
   * the policy started least recently when the pool is full.
   */
  refill(policy: P, took: boolean): void
  /** Kills the waiting runners whose policy matches (their plugin changed): no start takes them any more. */
  discard(matches: (policy: P) => boolean): void
  /** Runners booted and waiting. */
  ready(): number
  /** Kills every waiting runner and stops refilling. Idempotent. */
  close(): Promise<void>
}

export interface PrewarmDeps<P extends PrewarmPolicy> {
  size: number
  /** Spawns one runner of policy in prewarmed mode (same command, node flags and base env as a worker). */
  spawn(policy: P): Proc
  /**
   * Booted at once, `size` of it: the policy that holds for every plugin when workers are not
   * sandboxed. A sandboxed runner may read only its plugin's files, so it is started for one plugin
   * and the pool fills as plugins start.
   */
  initial?: P
  log: Logger
}

// A runner that dies before it is ready this many times in a row stops the refilling: the command
// is broken, and a tight respawn loop would only burn CPU. Fresh spawns still serve every start.
const MAX_CONSECUTIVE_FAILURES = 3

interface Entry<P> {
  proc: Proc
  policy: P
  isReady: boolean
}

/**
 * Keeps up to `size` runners booted with the SDK loaded (DESIGN.md: prewarmed pool), so a cold start
 * skips node's own start-up. Each runner is used once, for one (org, plugin) of its policy.
 */
export function createPrewarmPool<P extends PrewarmPolicy>(deps: PrewarmDeps<P>): PrewarmPool<P> {
  const waiting = new Set<Entry<P>>()
  const givenUp = new Set<Promise<unknown>>()
  // Policies by their last cold start, oldest first: the order runners are given up in.
  const lastStarted = new Map<string, number>()
  let starts = 0
  let failures = 0
  let closed = false

  function boot(policy: P): void {
    if (closed || failures >= MAX_CONSECUTIVE_FAILURES) return
    let proc: Proc
    try {
      proc = deps.spawn(policy)
    } catch (err) {
      // No user or temp dir for one more process now (a WORKER_UID range in use): fresh spawns serve.
      deps.log.warn({ err }, 'could not boot a prewarmed runner')
      return
    }
    const entry: Entry<P> = { proc, policy, isReady: false }
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
      if (!waiting.delete(entry) || closed) return // taken (it is a worker now), given up, or shutting down
      failures++
      deps.log.warn({ ...exit, stderr: entry.proc.stderrTail(), failures }, 'prewarmed runner exited while waiting')
      boot(policy)
    })
  }

  /** Makes room for one more runner of policy; false when every waiting runner is of that policy. */
  function makeRoom(policy: P): boolean {
    if (waiting.size < deps.size) return true
    let oldest: Entry<P> | undefined
    for (const e of waiting) {
      if (e.policy.key === policy.key) continue
      if (!oldest || (lastStarted.get(e.policy.key) ?? -1) < (lastStarted.get(oldest.policy.key) ?? -1)) oldest = e
    }
    if (!oldest) return false
    giveUp(oldest)
    return true
  }

  function giveUp(entry: Entry<P>): void {
    waiting.delete(entry) // given up: its exit is not a failure
    entry.proc.child.kill('SIGKILL')
    const exited = entry.proc.exited.finally(() => givenUp.delete(exited))
    givenUp.add(exited)
  }

  if (deps.initial) for (let i = 0; i < deps.size; i++) boot(deps.initial)
  return {
    take(policy) {
      for (const entry of waiting) {
        if (!entry.isReady || entry.policy.key !== policy.key) continue
        waiting.delete(entry)
        return entry.proc
      }
      return undefined
    },
    refill(policy, took) {
      lastStarted.set(policy.key, starts++)
      const held = [...waiting].some((e) => e.policy.key === policy.key)
      if ((took || !held) && makeRoom(policy)) boot(policy)
    },
    discard(matches) {
      for (const entry of [...waiting]) if (matches(entry.policy)) giveUp(entry)
    },
    ready: () => [...waiting].filter((e) => e.isReady).length,
    async close() {
      closed = true
      const left = [...waiting]
      waiting.clear()
      for (const { proc } of left) proc.child.kill('SIGKILL')
      await Promise.all([...left.map(({ proc }) => proc.exited), ...givenUp])
    },
  }
}
