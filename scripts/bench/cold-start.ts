// Scenario 2: cold start to first byte. Each row is one function returning a sampler; the
// orchestration interleaves every row's samples so none of them always runs first.
import { request } from 'node:http'
import getPort from 'get-port'
import { startBenchGateway, type BenchGateway, type BenchGatewayOptions } from './lib/gateway.js'
import type { TimedResponse } from './lib/http.js'
import { hayPlugin } from './lib/hay.js'
import { minimalEnv, startProcess } from './lib/procs.js'
import { target, type Section } from './lib/report.js'
import { fmt, ratio, summarize, type Summary } from './lib/stats.js'

export interface ColdStartOptions {
  runs: number
  warmupRuns: number
}

export interface ColdSample {
  ms: number
  /** Server-Timing phases, when the sample came through the gateway. */
  phases?: Record<string, number>
}

export interface ColdSampler {
  sample(): Promise<ColdSample>
  stop(): Promise<void>
  /** A one-off measured during setup and reported as its own row (the first start fetches metadata). */
  first?: { name: string; sample: ColdSample }
}

/** One row of the table. Adding a row is adding one of these to ROWS. */
interface ColdRow {
  name: string
  setup(): Promise<ColdSampler | { skipped: string }>
}

const FLOOR = 'bare `node -e` http server (floor)'
const OURS = 'plugin-gateway cold request, our runner'

const PREWARMED = 'plugin-gateway cold request, prewarmed pool'
const ROWS: ColdRow[] = [bareFloorRow(), ourRunnerRow(), prewarmedPoolRow(), hayRunnerRow()]

export async function coldStart(opts: ColdStartOptions): Promise<Section> {
  const active: Array<{ row: ColdRow; sampler: ColdSampler }> = []
  const skipped: Array<{ row: ColdRow; reason: string }> = []
  try {
    for (const row of ROWS) {
      const s = await row.setup()
      if ('skipped' in s) skipped.push({ row, reason: s.skipped })
      else active.push({ row, sampler: s })
    }
    const samples = new Map<string, ColdSample[]>(active.map((a) => [a.row.name, []]))
    for (let i = 0; i < opts.warmupRuns + opts.runs; i++) {
      // Rotate the order so each row runs first equally often.
      const order = active.map((_, k) => active[(k + i) % active.length] as (typeof active)[number])
      for (const { row, sampler } of order) {
        const s = await sampler.sample()
        if (i >= opts.warmupRuns) samples.get(row.name)?.push(s)
      }
    }
    return report(opts, active, skipped, samples)
  } finally {
    await Promise.all(active.map((a) => a.sampler.stop()))
  }
}

// --- rows -------------------------------------------------------------------------------------

const BARE_SERVER = `require('node:http').createServer((q, s) => {
  s.writeHead(200, { 'content-type': 'application/json' })
  s.end(JSON.stringify({ status: 'healthy', pid: process.pid }))
}).listen(Number(process.argv[1]), '127.0.0.1')`

/** The floor: spawn → first 200, spawned with the same minimal env as a worker (NOTES.md). */
function bareFloorRow(): ColdRow {
  return { name: FLOOR, setup: async () => bareFloorSampler() }
}

export function bareFloorSampler(node = process.execPath): ColdSampler {
  return {
    async sample() {
      const port = await getPort({ host: '127.0.0.1' })
      const started = performance.now()
      const proc = startProcess('bare node', node, ['-e', BARE_SERVER, String(port)], { env: minimalEnv(), stdout: false })
      try {
        return { ms: (await firstOk(port, 1)) - started }
      } finally {
        await proc.stop()
      }
    },
    stop: async () => {},
  }
}

/** The gateway's cold request with our SDK v2 runner, spawned for the request (no prewarmed runner). */
function ourRunnerRow(): ColdRow {
  return {
    name: OURS,
    setup: () => gatewayColdSampler({ name: OURS, pluginId: 'echo', route: '/items/1', gateway: { env: { PREWARM_POOL_SIZE: '0' } } }),
  }
}

/**
 * The gateway's cold request served by a prewarmed runner (PREWARM_POOL_SIZE=1): each sample first
 * waits, outside the timed part, until the pool has refilled, as it has between real cold starts.
 */
function prewarmedPoolRow(): ColdRow {
  const name = PREWARMED
  return {
    name,
    setup: () =>
      gatewayColdSampler({
        name,
        pluginId: 'echo',
        route: '/items/1',
        gateway: { env: { PREWARM_POOL_SIZE: '1' } },
        beforeSample: prewarmedReady,
      }),
  }
}

/**
 * Hay's own runner, when HAY_RUNNER names its entry, with a plugin that declares a route
 * (HAY_PLUGIN_ID + HAY_PLUGIN_ROUTE): a cold request needs one, and Hay's core plugins have none.
 * Their start is measured in the no-ipc-start scenario.
 */
function hayRunnerRow(): ColdRow {
  const name = "plugin-gateway cold request, Hay's runner"
  return {
    name,
    setup: async () => {
      const hay = hayPlugin()
      if ('skipped' in hay) return { skipped: hay.skipped }
      if (!hay.route) return { skipped: `${hay.pluginId} declares no route (set HAY_PLUGIN_ID and HAY_PLUGIN_ROUTE)` }
      return gatewayColdSampler({
        name,
        pluginId: hay.pluginId,
        route: hay.route,
        gateway: { env: { PREWARM_POOL_SIZE: '0', RUNNER_COMMAND: `${process.execPath} ${hay.runner}`, PLUGINS_DIR: hay.pluginsDir } },
      })
    },
  }
}

// --- samplers ---------------------------------------------------------------------------------

/** Resolves once the gateway has a prewarmed runner waiting (bounded). */
export async function prewarmedReady(gw: BenchGateway): Promise<void> {
  const deadline = performance.now() + 10_000
  while ((await gw.admin<{ prewarmed: number }>('GET', '/workers')).prewarmed < 1) {
    if (performance.now() > deadline) throw new Error('no prewarmed runner became ready within 10 s')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/**
 * A gateway in its own process with one enabled instance. The first request also fetches the
 * plugin's metadata and is reported on its own; every sample after it stops the worker through the
 * admin API (outside the timed part) and times a public request to its first byte.
 */
export async function gatewayColdSampler(opts: {
  name: string
  pluginId: string
  route: string
  gateway?: BenchGatewayOptions
  /** Untimed preparation before each sample (after the worker stopped). */
  beforeSample?: (gw: BenchGateway) => Promise<void>
}): Promise<ColdSampler> {
  const org = 'cold'
  const gw = await startBenchGateway({ name: `gateway (${opts.name})`, ...opts.gateway })
  try {
    await gw.enable(org, opts.pluginId)
    const coldRequest = async (): Promise<ColdSample> => {
      const res = await gw.get(org, opts.pluginId, opts.route)
      if (res.status !== 200 || res.headers['x-plugin-cold-start'] !== '1') {
        throw new Error(`${opts.name}: expected a cold 200, got ${res.status} ${res.body.slice(0, 200)}`)
      }
      return { ms: res.ms, phases: serverTiming(res) }
    }
    const first = await coldRequest()
    const metadata = await gw.plugin(opts.pluginId)
    if (metadata.metadataState !== 'fresh') throw new Error(`${opts.name}: metadata is ${metadata.metadataState} after the first start`)
    return {
      first: { name: `${opts.name}: very first start (includes the /metadata fetch)`, sample: first },
      async sample() {
        await gw.stopWorker(org, opts.pluginId)
        await opts.beforeSample?.(gw)
        return coldRequest()
      },
      stop: () => gw.stop(),
    }
  } catch (err) {
    await gw.stop()
    throw err
  }
}

/** Resolves with the time the first 200 arrived from 127.0.0.1:port, retrying refused connections every pollMs. */
function firstOk(port: number, pollMs: number, timeoutMs = 10_000): Promise<number> {
  const deadline = performance.now() + timeoutMs
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (performance.now() > deadline) return reject(new Error(`nothing answered on port ${port} within ${timeoutMs} ms`))
      const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        const at = performance.now()
        res.resume()
        if (res.statusCode === 200) resolve(at)
        else setTimeout(attempt, pollMs)
      })
      req.on('error', () => setTimeout(attempt, pollMs))
      req.end()
    }
    attempt()
  })
}

function serverTiming(res: TimedResponse): Record<string, number> {
  const header = res.headers['server-timing']
  const phases: Record<string, number> = {}
  for (const part of String(header ?? '').split(',')) {
    const m = /^\s*([\w-]+);dur=([\d.]+)/.exec(part)
    if (m) phases[m[1] as string] = Number(m[2])
  }
  return phases
}

// --- report -----------------------------------------------------------------------------------

function report(
  opts: ColdStartOptions,
  active: ReadonlyArray<{ row: ColdRow; sampler: ColdSampler }>,
  skipped: ReadonlyArray<{ row: ColdRow; reason: string }>,
  samples: Map<string, ColdSample[]>,
): Section {
  const stats = new Map<string, Summary>([...samples].map(([name, s]) => [name, summarize(s.map((x) => x.ms))]))
  const floor = stats.get(FLOOR)?.p50 ?? NaN
  const line = (name: string, s: Summary) => [
    name,
    String(s.n),
    fmt(s.p50),
    fmt(s.p95),
    fmt(s.min),
    fmt(s.max),
    `${fmt(ratio(s.p50, floor), 2)}×`,
  ]

  const rows: string[][] = []
  for (const { row, sampler } of active) {
    rows.push(line(row.name, stats.get(row.name) as Summary))
    if (sampler.first) rows.push(line(sampler.first.name, summarize([sampler.first.sample.ms])))
  }
  for (const { row, reason } of skipped) rows.push([row.name, '0', '—', '—', '—', '—', `skipped: ${reason}`])

  const notes: string[] = []
  for (const { row, sampler } of active) {
    const withPhases = (samples.get(row.name) ?? []).filter((s) => s.phases)
    if (withPhases.length === 0) continue
    const phase = (k: string) => fmt(summarize(withPhases.map((s) => s.phases?.[k] ?? NaN)).p50)
    notes.push(
      `${row.name}, Server-Timing p50 (gateway-side): spawn ${phase('spawn')} ms, ready ${phase('ready')} ms, ` +
        `metadata ${phase('metadata')} ms, cold total ${phase('cold')} ms, proxy ${phase('proxy')} ms.`,
    )
    const first = sampler.first?.sample.phases
    if (first) notes.push(`${sampler.first?.name}: Server-Timing metadata ${fmt(first.metadata)} ms of cold ${fmt(first.cold)} ms.`)
  }

  const ours = stats.get(OURS)
  const r = ratio(ours?.p50 ?? NaN, floor)
  const warm = stats.get(PREWARMED)?.p50 ?? NaN
  return {
    title: 'Cold start to first byte',
    method:
      `${opts.runs} samples per row after ${opts.warmupRuns} discarded, rows interleaved (rotating order). The floor is timed ` +
      `from spawn() to the first 200 (polled every 1 ms), spawned with the worker's minimal env (PATH, NODE_ENV, HOME, TMPDIR). ` +
      `Gateway rows time a public request to its first byte after the worker was stopped through the admin API; metadata is ` +
      `already fresh, so its fetch is not in the loop (the very first start, which fetches it, is its own row).`,
    tables: [{ headers: ['row', 'n', 'p50 ms', 'p95 ms', 'min ms', 'max ms', 'p50 ÷ floor p50'], rows }],
    notes,
    targets: [
      target(
        'cold start p50 vs bare floor',
        '≤ 1.3×',
        `${fmt(r, 2)}× (${fmt(ours?.p50)} vs ${fmt(floor)} ms)`,
        Number.isFinite(r) ? r <= 1.3 : null,
      ),
      target(
        'prewarmed cold start p50',
        '≤ 15 ms and < ½ floor',
        `${fmt(warm)} ms (floor ${fmt(floor)} ms)`,
        Number.isFinite(warm) ? warm <= 15 && warm < floor / 2 : null,
      ),
    ],
  }
}
