// Scenario 6: metadata cache. Once a plugin's metadata is fresh, restarting its workers (and starting
// workers for new orgs) must not fetch /metadata again: metadataFetchedAt stays unchanged.
import { startBenchGateway } from './lib/gateway.js'
import { target, type Section } from './lib/report.js'
import { fmt, summarize } from './lib/stats.js'

export interface MetadataCacheOptions {
  restarts: number
}

const ROUTE = '/items/1'

export async function metadataCache(opts: MetadataCacheOptions): Promise<Section> {
  const gw = await startBenchGateway({ name: 'gateway (metadata cache)' })
  try {
    await gw.enable('meta-0', 'echo')
    const before0 = await gw.plugin('echo')
    const first = await gw.get('meta-0', 'echo', ROUTE)
    const fresh = await gw.plugin('echo')
    const metadataMs = (h: unknown) => Number(/metadata;dur=([\d.]+)/.exec(String(h ?? ''))?.[1] ?? NaN)

    const restartTimings: number[] = []
    for (let i = 0; i < opts.restarts; i++) {
      // Alternate: restart the same org's worker, then a new org's first worker.
      const org = i % 2 === 0 ? 'meta-0' : `meta-${i}`
      if (org === 'meta-0') await gw.stopWorker(org, 'echo')
      else await gw.enable(org, 'echo')
      const res = await gw.get(org, 'echo', ROUTE)
      if (res.status !== 200 || res.headers['x-plugin-cold-start'] !== '1')
        throw new Error(`restart ${i}: expected a cold 200, got ${res.status}`)
      restartTimings.push(metadataMs(res.headers['server-timing']))
    }
    const after = await gw.plugin('echo')
    const fetches = after.metadataFetchedAt === fresh.metadataFetchedAt ? 0 : 1
    const phase = summarize(restartTimings)
    return {
      title: 'Metadata cache',
      method:
        `A fresh database: the first cold start of echo fetches /metadata (metadataFetchedAt goes from ${before0.metadataFetchedAt ?? 'null'} ` +
        `to set). Then ${opts.restarts} cold starts alternate between restarting that org's worker and a new org's first worker; ` +
        `a /metadata fetch would move metadataFetchedAt (GET /admin/plugins).`,
      tables: [
        {
          headers: [
            'cold starts after the first',
            'metadata state',
            'metadataFetchedAt unchanged',
            '/metadata fetches',
            'first start metadata phase ms',
            'later metadata phase p50 / max ms',
          ],
          rows: [
            [
              String(opts.restarts),
              String(after.metadataState),
              fetches === 0 ? 'yes' : `no (${fresh.metadataFetchedAt} → ${after.metadataFetchedAt})`,
              String(fetches === 0 ? 0 : '≥ 1'),
              fmt(metadataMs(first.headers['server-timing'])),
              `${fmt(phase.p50, 2)} / ${fmt(phase.max, 2)}`,
            ],
          ],
        },
      ],
      notes: [],
      targets: [target('metadata fetches on restart', '0', String(fetches === 0 ? 0 : '≥ 1'), fetches === 0)],
    }
  } finally {
    await gw.stop()
  }
}
