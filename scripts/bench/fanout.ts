// Scenario 4: fan-out. Many orgs × one plugin under a MAX_WORKERS cap: memory of the whole process
// tree (gateway + workers, VmRSS from /proc), LRU evictions, errors; plus idle gateway and idle worker RSS.
import { startBenchGateway } from './lib/gateway.js'
import { mapLimit, pollUntil } from './lib/http.js'
import { rssBytes } from './lib/procs.js'
import { target, type Section } from './lib/report.js'
import { fmt, mb, mean } from './lib/stats.js'

export interface FanoutOptions {
  orgs: number
  maxWorkers: number
  /** Requests in flight at once while fanning out. */
  concurrency: number
}

const ROUTE = '/items/1'
const IDLE_GATEWAY_MB = 80
const IDLE_WORKER_MB = 45 // issue 16 (the first wave asked ≤ 50)

export async function fanout(opts: FanoutOptions): Promise<Section> {
  const gw = await startBenchGateway({ name: 'gateway (fan-out)', env: { LOG_LEVEL: 'info', MAX_WORKERS: String(opts.maxWorkers) } })
  try {
    const orgs = Array.from({ length: opts.orgs }, (_, i) => `fan-${i}`)
    await mapLimit(orgs, 8, (org) => gw.enable(org, 'echo'))
    await settle()
    const gatewayAfterCalls = rssBytes(gw.pid) ?? NaN
    const gatewayIdle = await idleRss(gw.pid)

    const evictions = gw.countLogs((e) => e.msg === 'worker stopped' && e.reason === 'evicted')
    const spawns = gw.countLogs((e) => e.msg === 'worker ready')
    let peakTree = 0
    let peakGateway = 0
    const sampler = setInterval(() => {
      const gateway = rssBytes(gw.pid) ?? 0
      peakTree = Math.max(peakTree, gateway + sumRss(gw.workerPids()))
      peakGateway = Math.max(peakGateway, gateway)
    }, 100)
    const started = performance.now()
    let statuses: number[]
    try {
      statuses = await mapLimit(orgs, opts.concurrency, async (org) => {
        try {
          return (await gw.get(org, 'echo', ROUTE)).status
        } catch {
          return 0
        }
      })
    } finally {
      clearInterval(sampler)
    }
    const wallMs = performance.now() - started
    let lastStates = ''
    // Evicted workers finish stopping in the background; measure once only live ones remain.
    await pollUntil(
      'evicted workers to finish stopping',
      async () => {
        const states = (await gw.workers()).map((w) => w.state)
        lastStates = states.join(',')
        return states.every((s) => s === 'ready') ? true : undefined
      },
      60_000,
      100,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; states: ${lastStates}`)
    })
    await settle()
    // Per worker: the pids the gateway lists as workers (a prewarmed runner, if any, is not one yet).
    const listed = (await gw.workers()).map((w) => w.pid).filter((p): p is number => p !== null)
    const workerRss = listed.map(rssBytes).filter((b): b is number => b !== null)
    const endGateway = rssBytes(gw.pid) ?? NaN
    const endTree = endGateway + sumRss(gw.workerPids())
    const errors = statuses.filter((s) => s !== 200)
    const perWorker = workerRss.length > 0 ? mean(workerRss) : NaN

    return {
      title: 'Fan-out under MAX_WORKERS',
      method:
        `${opts.orgs} orgs × the echo plugin, one request each (${opts.concurrency} in flight), MAX_WORKERS=${opts.maxWorkers}. ` +
        `RSS is VmRSS from /proc/<pid>/status for the gateway and every process under it (workers, and a prewarmed ` +
        `runner when PREWARM_POOL_SIZE > 0), sampled every 100 ms; per idle worker: the pids GET /admin/workers lists. ` +
        `Evictions and spawns are counted from the gateway's 'worker stopped' (reason evicted) and 'worker ready' log lines.`,
      tables: [
        {
          headers: ['orgs', 'spawns', 'evictions', 'errors', 'workers live at end', 'peak tree RSS MB', 'end tree RSS MB', 'wall s'],
          rows: [
            [
              String(opts.orgs),
              String(spawns()),
              String(evictions()),
              errors.length === 0 ? '0' : `${errors.length} (${[...new Set(errors)].join(', ')})`,
              String(listed.length),
              fmt(mb(peakTree)),
              fmt(mb(endTree)),
              fmt(wallMs / 1000),
            ],
          ],
        },
        {
          headers: [
            'gateway RSS MB right after the enables',
            'gateway RSS idle MB (no workers)',
            'gateway RSS peak MB',
            'gateway RSS end MB',
            'per idle worker RSS MB (mean)',
            'max worker RSS MB',
          ],
          rows: [
            [
              fmt(mb(gatewayAfterCalls)),
              `${fmt(mb(gatewayIdle))} (after ${IDLE_WAIT_S} s idle)`,
              fmt(mb(peakGateway)),
              fmt(mb(endGateway)),
              fmt(mb(perWorker)),
              fmt(mb(Math.max(...workerRss))),
            ],
          ],
        },
      ],
      notes: [
        `Idle gateway RSS: V8 gives back the heap a burst grew (its memory reducer) only after some seconds without ` +
          `allocation, so the idle reading is taken ${IDLE_WAIT_S} s after the ${opts.orgs} admin calls; the reading ` +
          `0.5 s after them is shown beside it.`,
      ],
      targets: [
        target('gateway RSS idle', `≤ ${IDLE_GATEWAY_MB} MB`, `${fmt(mb(gatewayIdle))} MB`, mb(gatewayIdle) <= IDLE_GATEWAY_MB),
        target('RSS per idle worker', `≤ ${IDLE_WORKER_MB} MB`, `${fmt(mb(perWorker))} MB`, mb(perWorker) <= IDLE_WORKER_MB),
        target('fan-out errors', '0', String(errors.length), errors.length === 0),
      ],
    }
  } finally {
    await gw.stop()
  }
}

const sumRss = (pids: readonly number[]) => pids.reduce((sum, pid) => sum + (rssBytes(pid) ?? 0), 0)

// Lets timers and GC of the last burst run before an "idle" reading.
const settle = () => new Promise((r) => setTimeout(r, 500))

// V8 gives back what a burst grew (its memory reducer) some seconds after allocation stops: 8–25 s
// here. Stopping at the first plateau can stop before that, so an idle reading waits a fixed time.
const IDLE_WAIT_S = 45

/** RSS after IDLE_WAIT_S seconds without a request. */
async function idleRss(pid: number): Promise<number> {
  await new Promise((r) => setTimeout(r, IDLE_WAIT_S * 1000))
  return rssBytes(pid) ?? NaN
}
