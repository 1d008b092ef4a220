// Scenario 7: two gateways on one libSQL file (CLUSTER_SECRET). The worker lives on its lease owner;
// a request that lands on the other gateway is forwarded there. Measured side by side: the same
// warm worker reached through its owner and through the non-owner.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startBenchGateway, type BenchGateway } from './lib/gateway.js'
import { measureLoad, type LoadResult } from './lib/load.js'
import { target, type Section } from './lib/report.js'
import { fmt, ratio } from './lib/stats.js'

export interface ClusterOptions {
  durationS: number
  warmupS: number
  connections: number[]
}

const ORG = 'bench'
const ROUTE = '/items/1'

export async function cluster(opts: ClusterOptions): Promise<Section> {
  const dir = await mkdtemp(join(tmpdir(), 'plugin-gateway-bench-cluster-'))
  const env = (id: string) => ({
    DATABASE_URL: `file:${join(dir, 'gateway.db')}`,
    CLUSTER_SECRET: 'bench-cluster-secret-0123456789',
    GATEWAY_ID: id,
    PREWARM_POOL_SIZE: '0',
  })
  const gateways: BenchGateway[] = []
  try {
    const owner = await startBenchGateway({ name: 'gateway (owner)', env: env('owner') })
    gateways.push(owner)
    const other = await startBenchGateway({ name: 'gateway (non-owner)', env: env('other') })
    gateways.push(other)
    await owner.enable(ORG, 'echo')
    const first = await owner.get(ORG, 'echo', ROUTE) // the owner takes the lease and starts the worker
    if (first.status !== 200) throw new Error(`warm-up request failed: ${first.status}`)
    const viaOther = await other.get(ORG, 'echo', ROUTE)
    if (viaOther.status !== 200 || viaOther.headers['x-plugin-cold-start'] === '1') {
      throw new Error(`the non-owner did not reach the owner's warm worker: ${viaOther.status}`)
    }

    const rows: string[][] = []
    const results = new Map<string, LoadResult>()
    for (const c of opts.connections) {
      for (const [name, gw] of [
        ['through the owner', owner],
        ['through a non-owner (forwarded)', other],
      ] as const) {
        const r = await measureLoad(`${gw.url}/orgs/${ORG}/plugins/echo${ROUTE}`, {
          connections: c,
          durationS: opts.durationS,
          warmupS: opts.warmupS,
        })
        results.set(`${name}@${c}`, r)
        rows.push([name, String(c), fmt(r.rps, 0), fmt(r.meanMs, 3), String(r.p50Ms), String(r.p99Ms), String(r.errors)])
      }
    }
    const workers = [...(await owner.workers()), ...(await other.workers())]
    const direct = results.get('through the owner@1')
    const forwarded = results.get('through a non-owner (forwarded)@1')
    const addedMs = (forwarded?.meanMs ?? NaN) - (direct?.meanMs ?? NaN)
    const warmHits = results.get(`through a non-owner (forwarded)@${opts.connections.at(-1)}`)
    const hitRatio = warmHits ? (warmHits.requests - warmHits.errors) / warmHits.requests : NaN
    return {
      title: 'Cluster: landing on the owner vs a non-owner',
      method:
        `Two gateway processes share one libSQL file (CLUSTER_SECRET set). The owner starts the echo worker; then each gateway ` +
        `is loaded in turn with autocannon (${opts.durationS} s after ${opts.warmupS} s warm-up). Requests to the non-owner are ` +
        `forwarded over its keep-alive pool to the owner, which proxies them to the same warm worker.`,
      tables: [{ headers: ['path', 'c', 'rps', 'mean ms', 'p50 ms', 'p99 ms', 'errors'], rows }],
      notes: [
        `Worker processes in the cluster after the run: ${workers.length} (expected 1).`,
        `Forwarded throughput at c=${opts.connections.at(-1)}: ${fmt(ratio(warmHits?.rps ?? NaN, results.get(`through the owner@${opts.connections.at(-1)}`)?.rps ?? NaN), 2)}× the owner's.`,
      ],
      targets: [
        target(
          'non-owner warm-hit ratio',
          '100 % (no cold start, no error)',
          `${fmt(hitRatio * 100, 2)} %`,
          Number.isFinite(hitRatio) ? hitRatio === 1 : null,
        ),
        target('added latency via a non-owner, c=1', 'reported', `${fmt(addedMs, 3)} ms`, null),
        target('one worker per cluster', '1', String(workers.length), workers.length === 1),
      ],
    }
  } finally {
    await Promise.all(gateways.map((g) => g.stop()))
    await rm(dir, { recursive: true, force: true })
  }
}
