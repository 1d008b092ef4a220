// Scenario 5: reaper precision. Several warm workers, each left idle after one last request; the
// time from that request's end to the stop decision (slot leaves 'ready') and to the process exit.
import { startBenchGateway } from './lib/gateway.js'
import { mapLimit, pollUntil } from './lib/http.js'
import { isRunning } from './lib/procs.js'
import type { Section } from './lib/report.js'
import { fmt, summarize } from './lib/stats.js'

export interface ReaperOptions {
  idleMs: number
  samples: number
}

const ROUTE = '/items/1'
const POLL_MS = 5

interface Observation {
  decidedMs: number
  exitedMs: number
}

export async function reaper(opts: ReaperOptions): Promise<Section> {
  const gw = await startBenchGateway({ name: 'gateway (reaper)', env: { IDLE_TIMEOUT_MS: String(opts.idleMs) } })
  try {
    const orgs = Array.from({ length: opts.samples }, (_, i) => `reap-${i}`)
    await mapLimit(orgs, 4, (org) => gw.enable(org, 'echo'))
    await gw.get(orgs[0] as string, 'echo', ROUTE) // metadata fetched once, outside the samples

    const observations = await mapLimit(orgs, opts.samples, async (org, i): Promise<Observation> => {
      await new Promise((r) => setTimeout(r, i * 37)) // staggered, so the samples do not share one timer tick
      await gw.get(org, 'echo', ROUTE) // cold or warm, the worker is ready afterwards
      const last = await gw.get(org, 'echo', ROUTE) // the last activity; the idle clock starts when it ends
      const lastAt = performance.now()
      if (last.status !== 200) throw new Error(`reaper sample ${org}: ${last.status}`)
      const pid = (await gw.workers()).find((w) => w.orgId === org)?.pid
      if (!pid) throw new Error(`reaper sample ${org}: no worker pid`)
      let decidedAt = NaN
      const exitedAt = await pollUntil(
        `the idle worker of ${org} to exit`,
        async () => {
          if (Number.isNaN(decidedAt)) {
            const w = (await gw.workers()).find((x) => x.orgId === org)
            if (w?.state !== 'ready') decidedAt = performance.now()
          }
          return isRunning(pid) ? undefined : performance.now()
        },
        opts.idleMs + 15_000,
        POLL_MS,
      )
      if (Number.isNaN(decidedAt)) decidedAt = exitedAt
      return { decidedMs: decidedAt - lastAt, exitedMs: exitedAt - lastAt }
    })

    const decided = summarize(observations.map((o) => o.decidedMs))
    const exited = summarize(observations.map((o) => o.exitedMs))
    const row = (name: string, s: typeof decided) => [name, String(s.n), fmt(s.min), fmt(s.p50), fmt(s.max), fmt(s.p50 - opts.idleMs)]
    return {
      title: 'Reaper precision',
      method:
        `IDLE_TIMEOUT_MS=${opts.idleMs}; ${opts.samples} workers (staggered), each left idle after a last request. Times from the end ` +
        `of that request to the stop decision (the slot leaves 'ready' in GET /admin/workers) and to the worker process exit ` +
        `(/proc/<pid> gone), polled every ${POLL_MS} ms. The stop itself is POST /disable → SIGTERM → exit.`,
      tables: [
        {
          headers: ['observed', 'n', 'min ms', 'p50 ms', 'max ms', 'p50 − configured ms'],
          rows: [row('stop decided', decided), row('process exited', exited)],
        },
      ],
      notes: [],
      targets: [],
    }
  } finally {
    await gw.stop()
  }
}
