// The runner process's life (CONTRACT.md §2, §5): it leaves on SIGTERM, SIGINT or when its parent
// gateway lets go of the IPC channel, draining and saying goodbye to the plugin within a deadline;
// it fails loudly, with a code, when the start cannot finish.
import { exitCodeFor, RunnerError } from './errors.js'
import { messageOf } from './guards.js'
import type { Worker } from './worker.js'

export type Phase = 'loading the entry' | 'onInitialize' | 'onStart' | 'serving'

export interface Lifecycle {
  /** The start reached this phase; an event loop that empties before 'serving' is a start that cannot settle. */
  enter(phase: Phase): void
  /** The worker a shutdown drains and disables. */
  attach(worker: Pick<Worker, 'server' | 'disable'>): void
  isStopping(): boolean
  /** Exit 1 (init failed) or 2 (cannot serve) with the error's code on stderr. */
  fail(err: unknown): never
}

// The gateway escalates to SIGKILL 5 s after SIGTERM (CONTRACT.md §5); finish well inside that.
const SHUTDOWN_DEADLINE_MS = 3_000

/** Installs the process's signal, disconnect and beforeExit handlers. */
export function startLifecycle(): Lifecycle {
  let phase: Phase = 'loading the entry'
  let worker: Pick<Worker, 'server' | 'disable'> | undefined
  let stopping = false

  const fail = (err: unknown): never => {
    const code = err instanceof RunnerError ? err.code : 'INIT_FAILED'
    const exitCode = exitCodeFor(code)
    process.stderr.write(`plugin-runner: ${exitCode === 2 ? 'runtime' : 'init'} failed: ${code}: ${messageOf(err)}\n`)
    process.exit(exitCode)
  }

  /** Stop accepting, run onDisable unless /disable already did, drain, exit 0; all bounded. */
  const shutdown = () => {
    if (stopping) return
    stopping = true
    setTimeout(() => process.exit(0), SHUTDOWN_DEADLINE_MS).unref()
    if (!worker?.server.listening) process.exit(0) // still starting: nothing to drain or say goodbye to
    const { server } = worker
    const closed = new Promise<void>((resolveClosed) => server.close(() => resolveClosed()))
    server.closeIdleConnections()
    void Promise.all([worker.disable(), closed]).finally(() => process.exit(0))
  }

  // If the event loop empties before the worker listens, a hook returned a promise that can never
  // settle. Say so and fail instead of exiting 0 as though all were well.
  const onBeforeExit = () => {
    if (phase !== 'serving') fail(new RunnerError('NEVER_SETTLED', `${phase} never settled and nothing else keeps the worker alive`))
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

  return {
    enter(next) {
      phase = next
      if (next === 'serving') process.off('beforeExit', onBeforeExit)
    },
    attach(w) {
      worker = w
    },
    isStopping: () => stopping,
    fail,
  }
}
