// Scenario 7: two gateways on one libSQL file (CLUSTER_SECRET). The worker lives on its lease owner;
// a request that lands on the other gateway is forwarded there. Measured side by side: the same
// warm worker reached through its owner and through the non-owner.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startBenchGateway, type BenchGateway } from './lib/gateway.js'
import { measureLoad, type LoadResult } from './lib/load.js'
import { target, type Section } from './lib/report.js'
import { fmt, median, paired, ratio } from './lib/stats.js'

export interface ClusterOptions {
  durationS: number
  warmupS: number
  rounds: number
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

    // Rounds alternate which path goes first, so neither always runs on a freshly idle machine; each
    // figure is the median over rounds and the ratio the median of per-round ratios.
    const paths = [
      { name: 'through the owner', gw: owner, cpuPids: [owner.pid] },
      { name: 'through a non-owner (forwarded)', gw: other, cpuPids: [other.pid, owner.pid] },
    ] as const
    const results = new Map<string, LoadResult[]>()
    for (const c of opts.connections) {
      for (let round = 0; round < opts.rounds; round++) {
        for (const path of round % 2 === 0 ? paths : [...paths].reverse()) {
          const r = await measureLoad(`${path.gw.url}/orgs/${ORG}/plugins/echo${ROUTE}`, {
            connections: c,
            durationS: opts.durationS,
            warmupS: opts.warmupS,
            cpuPids: path.cpuPids,
          })
          results.set(`${path.name}@${c}`, [...(results.get(`${path.name}@${c}`) ?? []), r])
        }
      }
    }
    const of = (name: string, c: number) => results.get(`${name}@${c}`) ?? []
    const rows = opts.connections.flatMap((c) =>
      paths.map(({ name }) => {
        const rs = of(name, c)
        const med = (f: (r: LoadResult) => number) => median(rs.map(f))
        const errors = rs.reduce((n, r) => n + r.errors, 0)
        return [
          name,
          String(c),
          fmt(
            med((r) => r.rps),
            0,
          ),
          fmt(
            med((r) => r.meanMs),
            3,
          ),
          String(med((r) => r.p99Ms)),
          fmt(
            med((r) => r.cpuUsPerRequest),
            1,
          ),
          String(errors),
        ]
      }),
    )
    const [lo, hi] = [Math.min(...opts.connections), Math.max(...opts.connections)]
    const [ownerPath, forwardedPath] = [paths[0].name, paths[1].name]
    const workers = [...(await owner.workers()), ...(await other.workers())]
    const addedMs = median(paired(of(forwardedPath, lo), of(ownerPath, lo), (f, o) => f.meanMs - o.meanMs))
    const forwardedRatio = median(paired(of(forwardedPath, hi), of(ownerPath, hi), (f, o) => ratio(f.rps, o.rps)))
    const requests = of(forwardedPath, hi).reduce((n, r) => n + r.requests, 0)
    const failed = of(forwardedPath, hi).reduce((n, r) => n + r.errors, 0)
    const hitRatio = requests > 0 ? (requests - failed) / requests : NaN
    return {
      title: 'Cluster: landing on the owner vs a non-owner',
      method:
        `Two gateway processes share one libSQL file (CLUSTER_SECRET set). The owner starts the echo worker; then each gateway ` +
        `is loaded in turn with autocannon, ${opts.rounds} round(s) of ${opts.durationS} s after ${opts.warmupS} s warm-up, the order ` +
        `reversed every round; figures are medians over rounds. Requests to the non-owner are forwarded over its keep-alive pool ` +
        `to the owner, which proxies them to the same warm worker. CPU µs/req counts the gateways on the path (both when forwarded).`,
      tables: [{ headers: ['path', 'c', 'rps', 'mean ms', 'p99 ms', 'CPU µs/req', 'errors'], rows }],
      notes: [`Worker processes in the cluster after the run: ${workers.length} (expected 1).`],
      targets: [
        target(
          'non-owner warm-hit ratio',
          '100 % (no cold start, no error)',
          `${fmt(hitRatio * 100, 2)} %`,
          Number.isFinite(hitRatio) ? hitRatio === 1 : null,
        ),
        target(
          `throughput through a non-owner vs the owner (c=${hi})`,
          '≥ 0.6×',
          `${fmt(forwardedRatio, 2)}×`,
          Number.isFinite(forwardedRatio) ? forwardedRatio >= 0.6 : null,
        ),
        target(`added latency via a non-owner, c=${lo}`, 'reported', `${fmt(addedMs, 3)} ms`, null),
        target('one worker per cluster', '1', String(workers.length), workers.length === 1),
      ],
    }
  } finally {
    await Promise.all(gateways.map((g) => g.stop()))
    await rm(dir, { recursive: true, force: true })
  }
}
