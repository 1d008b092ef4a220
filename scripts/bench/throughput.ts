// Scenario 1: warm proxy throughput and latency. Every target fronts the same warm echo worker
// (the gateway's own child); runs are interleaved, and the order flips every round so no target
// always runs on a freshly idle machine.
import type { BenchGateway } from './lib/gateway.js'
import { startBenchGateway } from './lib/gateway.js'
import { timedRequest } from './lib/http.js'
import { measureLoad, type LoadResult } from './lib/load.js'
import {
  startFastifyProxy,
  startGatewayForwarder,
  startNginx,
  startUndiciProxy,
  type ProxyStart,
  type RunningProxy,
} from './lib/reference-proxies.js'
import { target, type Section } from './lib/report.js'
import { fmt, fmtInt, median, paired, ratio } from './lib/stats.js'

export interface ThroughputOptions {
  durationS: number
  warmupS: number
  rounds: number
  connections: readonly number[]
}

interface LoadTarget {
  name: string
  url: string
  /** The process doing the proxying (the worker itself for direct), for CPU time per request. */
  pid: number
}

const ORG = 'bench'
const ROUTE = '/items/1'
const GATEWAY = 'plugin-gateway'
const FASTIFY = '@fastify/http-proxy'
const UNDICI = 'node:http + undici Pool'
const NGINX = 'nginx'
const DIRECT = 'direct to worker'
// The gateway's layers: its forwarder alone, and its public path through the Hono app instead of the fast path.
const FORWARDER = "node:http + the gateway's forwarder, no rules"
const GATEWAY_HONO = 'plugin-gateway, public path through Hono'
const ORDER = [DIRECT, GATEWAY, UNDICI, FORWARDER, GATEWAY_HONO, FASTIFY, NGINX]

export async function throughput(opts: ThroughputOptions): Promise<Section> {
  const gw = await startBenchGateway({ name: 'gateway (throughput)' })
  const honoGw = await startBenchGateway({ name: 'gateway (throughput, through Hono)', env: { PUBLIC_FAST_PATH: 'false' } })
  const started: RunningProxy[] = []
  const notes: string[] = []
  try {
    const { upstream, workerPid } = await warmWorker(gw)
    await warmWorker(honoGw)
    const targets: LoadTarget[] = [
      { name: DIRECT, url: `${upstream}${ROUTE}`, pid: workerPid },
      { name: GATEWAY, url: `${gw.url}/orgs/${ORG}/plugins/echo${ROUTE}`, pid: gw.pid },
      { name: GATEWAY_HONO, url: `${honoGw.url}/orgs/${ORG}/plugins/echo${ROUTE}`, pid: honoGw.pid },
    ]
    notes.push(`${GATEWAY_HONO}: a second gateway (PUBLIC_FAST_PATH=false) in front of its own echo worker.`)
    const references: Array<[string, Promise<ProxyStart>]> = [
      [FASTIFY, startFastifyProxy(upstream)],
      [UNDICI, startUndiciProxy(upstream)],
      [FORWARDER, startGatewayForwarder(upstream)],
      [NGINX, startNginx(upstream)],
    ]
    for (const [name, starting] of references) {
      const proxy = await starting
      if ('skipped' in proxy) {
        notes.push(`${name}: skipped, ${proxy.skipped}.`)
        continue
      }
      started.push(proxy)
      targets.push({ name, url: `${proxy.url}${ROUTE}`, pid: proxy.pid })
    }
    // The gateway runs between direct and the baseline it is judged against (order reversed every round),
    // so each pair it is compared with is measured seconds apart.
    targets.sort((a, b) => ORDER.indexOf(a.name) - ORDER.indexOf(b.name))
    await assertSameAnswer(targets)

    const results = new Map<string, LoadResult[]>() // `${name}@${c}` → one result per round
    for (const c of opts.connections) {
      for (let round = 0; round < opts.rounds; round++) {
        const order = round % 2 === 0 ? targets : [...targets].reverse()
        for (const t of order) {
          const r = await measureLoad(t.url, { connections: c, durationS: opts.durationS, warmupS: opts.warmupS, cpuPids: [t.pid] })
          const key = `${t.name}@${c}`
          results.set(key, [...(results.get(key) ?? []), r])
        }
      }
    }
    return report(targets, results, opts, notes)
  } finally {
    await Promise.all(started.map((p) => p.stop()))
    await Promise.all([gw.stop(), honoGw.stop()])
  }
}

/** Enables the echo plugin, makes its worker warm, and returns the worker's own origin and pid. */
async function warmWorker(gw: BenchGateway): Promise<{ upstream: string; workerPid: number }> {
  await gw.enable(ORG, 'echo')
  const first = await gw.get(ORG, 'echo', ROUTE)
  if (first.status !== 200) throw new Error(`warm-up request failed: ${first.status} ${first.body}`)
  const worker = (await gw.workers()).find((w) => w.orgId === ORG && w.state === 'ready')
  if (!worker?.port || !worker.pid) throw new Error('no ready worker after the warm-up request')
  return { upstream: `http://127.0.0.1:${worker.port}`, workerPid: worker.pid }
}

// Every target must serve the same bytes, or the comparison is meaningless.
async function assertSameAnswer(targets: readonly LoadTarget[]): Promise<void> {
  const bodies = await Promise.all(targets.map(async (t) => ({ t, res: await timedRequest(t.url) })))
  const expected = bodies[0]?.res.body
  for (const { t, res } of bodies) {
    if (res.status !== 200 || res.body !== expected) throw new Error(`${t.name} answered ${res.status} ${res.body.slice(0, 200)}`)
  }
}

interface Combined {
  rps: number
  meanMs: number
  p50Ms: number
  p99Ms: number
  errors: number
  cpuUs: number
}

/** Median over rounds: one round run while the machine was busy moves the mean, not the median. */
function combine(rs: readonly LoadResult[] | undefined): Combined | undefined {
  if (!rs || rs.length === 0) return undefined
  return {
    rps: median(rs.map((r) => r.rps)),
    meanMs: median(rs.map((r) => r.meanMs)),
    p50Ms: median(rs.map((r) => r.p50Ms)),
    p99Ms: median(rs.map((r) => r.p99Ms)),
    errors: rs.reduce((a, r) => a + r.errors, 0),
    cpuUs: median(rs.map((r) => r.cpuUsPerRequest)),
  }
}

/** One target's and another's results at c connections, round by round (measured seconds apart). */
const rounds = (results: Map<string, LoadResult[]>, a: string, b: string, c: number) =>
  [results.get(`${a}@${c}`) ?? [], results.get(`${b}@${c}`) ?? []] as const

/**
 * The gateway's rps over another target's, per round (the two ran seconds apart, under the same
 * background load), then the median of those ratios: the figure the targets are judged on.
 */
const pairedRatio = (results: Map<string, LoadResult[]>, name: string, c: number): number =>
  median(paired(...rounds(results, GATEWAY, name, c), (g, o) => ratio(g.rps, o.rps)))

/** The gateway's CPU per request over another target's, per round, then the median. */
const pairedCpuRatio = (results: Map<string, LoadResult[]>, name: string, c: number): number =>
  median(paired(...rounds(results, GATEWAY, name, c), (g, o) => ratio(g.cpuUsPerRequest, o.cpuUsPerRequest)))

/** A target's mean latency minus direct's, per round, then the median: its added latency. */
const pairedAddedMs = (results: Map<string, LoadResult[]>, name: string, c: number): number =>
  median(paired(...rounds(results, name, DIRECT, c), (t, d) => t.meanMs - d.meanMs))

/** The gateway's mean latency minus another target's, per round, then the median. */
const pairedExtraMs = (results: Map<string, LoadResult[]>, name: string, c: number): number =>
  median(paired(...rounds(results, GATEWAY, name, c), (g, o) => g.meanMs - o.meanMs))

function report(targets: readonly LoadTarget[], results: Map<string, LoadResult[]>, opts: ThroughputOptions, notes: string[]): Section {
  const lo = Math.min(...opts.connections)
  const hi = Math.max(...opts.connections)
  const at = (name: string, c: number) => combine(results.get(`${name}@${c}`))

  const rows = targets.map((t) => {
    const a = at(t.name, lo)
    const b = at(t.name, hi)
    const added = t.name !== DIRECT ? pairedAddedMs(results, t.name, lo) : NaN
    return [
      t.name,
      fmtInt(a?.rps),
      fmt(a?.meanMs, 3),
      t.name === DIRECT ? '—' : fmt(added, 3),
      fmt(a?.cpuUs, 1),
      fmtInt(b?.rps),
      fmt(b?.p50Ms, 1),
      fmt(b?.p99Ms, 1),
      fmt(b?.cpuUs, 1),
      String((a?.errors ?? 0) + (b?.errors ?? 0)),
    ]
  })

  const gw = (c: number) => at(GATEWAY, c)?.rps ?? NaN
  const ratioRows = targets
    .filter((t) => t.name !== GATEWAY)
    .map((t) => [
      t.name,
      `${fmt(pairedRatio(results, t.name, lo), 2)}×`,
      `${fmt(pairedRatio(results, t.name, hi), 2)}×`,
      t.name === DIRECT ? '—' : `${fmt(pairedCpuRatio(results, t.name, hi), 2)}×`,
    ])

  const addedMs = pairedAddedMs(results, GATEWAY, lo)
  const baselineAddedMs = pairedAddedMs(results, UNDICI, lo)
  const extraMs = pairedExtraMs(results, UNDICI, lo)
  const cpuRatio = pairedCpuRatio(results, UNDICI, hi)
  const vs = (name: string, min: number) => {
    const ref = at(name, hi)?.rps
    const r = pairedRatio(results, name, hi)
    return target(
      `warm throughput vs ${name} (c=${hi})`,
      `≥ ${min.toFixed(1)}×`,
      ref === undefined ? 'not measured' : `${fmt(r, 2)}× (${fmtInt(gw(hi))} vs ${fmtInt(ref)} rps)`,
      ref === undefined ? null : r >= min,
    )
  }

  return {
    title: 'Warm proxy throughput and latency',
    method:
      `GET ${ROUTE} of the echo example through each target to the same warm worker; autocannon in the bench process, ` +
      `each proxy in its own process. ${opts.rounds} interleaved round(s) per concurrency (order reversed every round), ` +
      `each ${opts.warmupS} s warm-up + ${opts.durationS} s measured; figures are the median over rounds, and each ratio is the median of the per-round ratios (gateway and baseline measured in the same round). ` +
      `At c=${lo} the mean latency is ${lo}000 / rps (autocannon's percentiles are whole ms); "added" is the median over rounds of that minus direct's in the same round. ` +
      `CPU µs/req is the CPU time (all threads, /proc/<pid>/task/*/schedstat) of the proxy's own process per request ` +
      `(for direct: the worker's), which background load on the machine disturbs far less than rps; its ratios are medians of per-round ratios too. ` +
      `The gateway's layers: "${FORWARDER}" is node:http in front of the gateway's forwarder (dist/proxy) with none of its rules ` +
      `(scripts/bench/proxies/gateway-forwarder.ts); "${GATEWAY_HONO}" serves the same rules through the Hono app instead of the Node fast path.`,
    tables: [
      {
        headers: [
          'target',
          `rps c=${lo}`,
          `mean ms c=${lo}`,
          `added ms vs direct`,
          `CPU µs/req c=${lo}`,
          `rps c=${hi}`,
          `p50 ms c=${hi}`,
          `p99 ms c=${hi}`,
          `CPU µs/req c=${hi}`,
          'errors',
        ],
        rows,
      },
      {
        headers: ['plugin-gateway ÷ baseline', `rps ratio c=${lo}`, `rps ratio c=${hi}`, `CPU per request ratio c=${hi} (lower is better)`],
        rows: ratioRows,
      },
    ],
    notes,
    targets: [
      vs(FASTIFY, 1.0),
      vs(UNDICI, 0.8),
      target(
        `CPU per request vs ${UNDICI} (c=${hi})`,
        '≤ 1.25×',
        `${fmt(cpuRatio, 2)}× (${fmt(at(GATEWAY, hi)?.cpuUs, 1)} vs ${fmt(at(UNDICI, hi)?.cpuUs, 1)} µs)`,
        Number.isFinite(cpuRatio) ? cpuRatio <= 1.25 : null,
      ),
      target(
        `added latency at c=${lo}`,
        `≤ ${UNDICI}'s + 0.03 ms`,
        `${fmt(addedMs, 3)} ms (${UNDICI}: ${fmt(baselineAddedMs, 3)} ms; difference ${fmt(extraMs, 3)} ms)`,
        Number.isFinite(extraMs) ? extraMs <= 0.03 : null,
      ),
    ],
  }
}
