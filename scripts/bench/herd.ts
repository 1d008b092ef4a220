// Scenario 3: thundering herd. N concurrent first requests for one key must start one worker.
import { Pool } from 'undici'
import { startBenchGateway } from './lib/gateway.js'
import { target, type Section } from './lib/report.js'
import { fmt, summarize } from './lib/stats.js'

export interface HerdOptions {
  requests: number
}

const ROUTE = '/items/1'

export async function herd(opts: HerdOptions): Promise<Section> {
  // info level: the pool logs one 'worker ready' / 'worker start failed' line per start, which is the spawn count.
  const gw = await startBenchGateway({ name: 'gateway (herd)', env: { LOG_LEVEL: 'info' } })
  const client = new Pool(gw.url, { connections: opts.requests, pipelining: 1 })
  try {
    // Fetch the plugin's metadata with another org first, so the herd measures the spawn alone.
    await gw.enable('herd-warmup', 'echo')
    await gw.get('herd-warmup', 'echo', ROUTE)
    await gw.stopWorker('herd-warmup', 'echo')

    await gw.enable('herd', 'echo')
    const starts = gw.countLogs((e) => e.orgId === 'herd' && (e.msg === 'worker ready' || e.msg === 'worker start failed'))
    const path = `/orgs/herd/plugins/echo${ROUTE}`
    const started = performance.now()
    const outcomes = await Promise.all(
      Array.from({ length: opts.requests }, async () => {
        const t0 = performance.now()
        try {
          const res = await client.request({ method: 'GET', path, headersTimeout: 30_000, bodyTimeout: 30_000 })
          await res.body.dump()
          return { ok: res.statusCode === 200, ms: performance.now() - t0, cold: res.headers['x-plugin-cold-start'] === '1' }
        } catch {
          return { ok: false, ms: performance.now() - t0, cold: false }
        }
      }),
    )
    const wallMs = performance.now() - started
    const live = (await gw.workers()).filter((w) => w.orgId === 'herd')
    const spawns = starts()
    const errors = outcomes.filter((o) => !o.ok).length
    const lat = summarize(outcomes.map((o) => o.ms))
    return {
      title: 'Thundering herd',
      method:
        `${opts.requests} concurrent first requests (one connection each) for one (org, plugin) key whose worker is not running; ` +
        `the plugin's metadata was fetched beforehand through another org. Spawns are counted from the gateway's ` +
        `'worker ready' / 'worker start failed' log lines for the key (one per start).`,
      tables: [
        {
          headers: ['requests', 'spawns', 'workers live after', 'errors', 'answered cold', 'p50 ms', 'p99 ms', 'max ms', 'wall ms'],
          rows: [
            [
              String(opts.requests),
              String(spawns),
              String(live.length),
              String(errors),
              String(outcomes.filter((o) => o.cold).length),
              fmt(lat.p50),
              fmt(lat.p99),
              fmt(lat.max),
              fmt(wallMs),
            ],
          ],
        },
      ],
      notes: [],
      targets: [
        target('herd: one spawn, no errors', '1 spawn, 0 errors', `${spawns} spawn(s), ${errors} error(s)`, spawns === 1 && errors === 0),
      ],
    }
  } finally {
    await client.close()
    await gw.stop()
  }
}
