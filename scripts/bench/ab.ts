// A/B between two checkouts (e.g. before and after an optimisation), each built, each gateway in
// its own process.
//
// Warm proxy path (default): each gateway with its own warm echo worker. By default A and B are
// loaded at the same time (--together), so background load on a shared machine hits both alike and
// the per-round B/A ratio is paired; --alternate runs them one after the other instead.
//
//   npx tsx scripts/bench/ab.ts --a=/path/to/checkout-a --b=/path/to/checkout-b [--rounds=6] [--seconds=3] [--connections=1,32] [--alternate]
//     [--a-node-args="--max-semi-space-size=4"] [--b-node-args=…]   (node flags for one side's gateway)
//     [--a-env="PUBLIC_FAST_PATH=false"] [--b-env=…]                 (gateway environment for one side)
//   --b=undici or --b=fastify: side B is that reference proxy in front of side A's own worker.
//
// Cold start (--cold): each round times one cold request through A, one through B (no prewarmed
// pool; with --pool also one each with PREWARM_POOL_SIZE=1) and one bare `node -e` floor per node
// binary, in rotating order; p50s, each row's ratio to its floor, and the median per-round B/A.
//
//   npx tsx scripts/bench/ab.ts --cold --a=… --b=… [--rounds=30] [--pool] [--a-node=/path/to/node] [--b-node=…]
//
// Gateway start-up (--startup): each round starts gateway A and gateway B (no prewarmed pool), in
// alternating order, and times spawn → "listening"; then one request through a fresh echo worker,
// and the gateway's own RSS after it. p50s and the median per-round B/A.
//
//   npx tsx scripts/bench/ab.ts --startup --a=… --b=… [--rounds=20] [--a-node=/path/to/node] [--b-node=…] [--a-node-args=…]
//
// Cluster (--cluster): each side is two gateways on one database (CLUSTER_SECRET), the owner with the
// warm echo worker. Each round loads, in rotating order, A through its owner, A through its non-owner
// (forwarded), then B's two; the goal's ratio is forwarded / owner rps, per side and per round. CPU per
// request is split by process: each gateway, the worker, and the load generator (this process).
//
//   npx tsx scripts/bench/ab.ts --cluster --a=… --b=… [--rounds=6] [--seconds=3] [--connections=32]
//   --b=undici: side B's non-owner is that reference proxy in front of A's owner (the owner then serves
//   it as any client): what the cheapest Node hop in front of an owner costs.
//
// Every mode: --a-env="NAME=value NAME=value" (and --b-env) set gateway variables for one side, e.g. the
// same checkout twice with --a-env=WORKER_SANDBOX=off.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { bareFloorSampler, type ColdSampler, gatewayColdSampler, prewarmedReady } from './cold-start.js'
import { startBenchGateway, type BenchGateway } from './lib/gateway.js'
import { closeHttp } from './lib/http.js'
import { measureLoad, type LoadResult } from './lib/load.js'
import { cpuNs, leftovers, rssBytes, runPeriods, stopAll } from './lib/procs.js'
import { startFastifyProxy, startUndiciProxy } from './lib/reference-proxies.js'
import { fmt, fmtInt, mb, mean, median, paired, ratio, summarize } from './lib/stats.js'

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const checkouts = { A: arg('a'), B: arg('b') }
if (!checkouts.A || !checkouts.B) throw new Error('usage: --a=<checkout> --b=<checkout>|undici|fastify [--cold]')
const REFERENCES = { undici: startUndiciProxy, fastify: startFastifyProxy } as const
const rounds = Number(arg('rounds') ?? 6)
const seconds = Number(arg('seconds') ?? 3)
const connections = (arg('connections') ?? '1,32').split(',').map(Number)
const together = !process.argv.includes('--alternate')
const nodes = { A: arg('a-node') ?? process.execPath, B: arg('b-node') ?? process.execPath }
const nodeArgsOf = (label: 'A' | 'B') => (arg(`${label.toLowerCase()}-node-args`) ?? '').split(' ').filter(Boolean)
const envOf = (label: 'A' | 'B'): Record<string, string> =>
  Object.fromEntries(
    (arg(`${label.toLowerCase()}-env`) ?? '')
      .split(' ')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  )

interface Side {
  label: string
  url: string
  /** The process whose CPU time is charged to the requests. */
  pid: number
  /** The side's own warm worker. */
  upstream: string
}

async function start(label: 'A' | 'B', dir: string): Promise<Side> {
  const gw: BenchGateway = await startBenchGateway({
    name: `gateway ${label}`,
    main: join(resolve(dir), 'dist', 'node', 'main.js'),
    nodeArgs: nodeArgsOf(label),
    node: nodes[label],
    env: envOf(label),
  })
  await gw.enable('ab', 'echo')
  const res = await gw.get('ab', 'echo', '/items/1')
  if (res.status !== 200) throw new Error(`${label}: warm-up answered ${res.status} ${res.body}`)
  const worker = (await gw.workers()).find((w) => w.orgId === 'ab' && w.state === 'ready')
  return { label, url: `${gw.url}/orgs/ab/plugins/echo/items/1`, pid: gw.pid, upstream: `http://127.0.0.1:${worker?.port}` }
}

async function startReference(name: keyof typeof REFERENCES, a: Side): Promise<Side> {
  const proxy = await REFERENCES[name](a.upstream)
  return { label: 'B', url: `${proxy.url}/items/1`, pid: proxy.pid, upstream: a.upstream }
}

try {
  if (process.argv.includes('--cold')) await cold(Number(arg('rounds') ?? 30))
  else if (process.argv.includes('--cluster')) await clustered()
  else if (process.argv.includes('--startup')) await startup(Number(arg('rounds') ?? 20))
  else await warm()
} finally {
  await stopAll()
  await closeHttp()
  const left = leftovers()
  if (left.length > 0) console.error('left running:', left)
}

async function warm(): Promise<void> {
  const [dirA, dirB] = [checkouts.A as string, checkouts.B as string]
  const a = await start('A', dirA)
  const b = dirB in REFERENCES ? await startReference(dirB as keyof typeof REFERENCES, a) : await start('B', dirB)
  const sides = [a, b]
  for (const c of connections) {
    const results: Record<string, LoadResult[]> = { A: [], B: [] }
    for (let r = 0; r < rounds; r++) {
      const measure = (side: (typeof sides)[number]) =>
        measureLoad(side.url, { connections: c, durationS: seconds, warmupS: 0.5, cpuPids: [side.pid] })
      if (together) {
        const [a, b] = await Promise.all(sides.map(measure))
        results.A?.push(a as LoadResult)
        results.B?.push(b as LoadResult)
      } else {
        for (const side of r % 2 === 0 ? sides : [...sides].reverse()) results[side.label]?.push(await measure(side))
      }
      const last = (l: string) => results[l]?.at(-1)
      const show = (l: string) => `${l} ${fmtInt(last(l)?.rps)} rps ${fmt(last(l)?.cpuUsPerRequest, 1)} µs cpu/req`
      console.log(`c=${c} round ${r + 1}: ${show('A')}, ${show('B')}`)
    }
    const rps = (l: string) => mean((results[l] ?? []).map((x) => x.rps))
    const lat = (l: string) => mean((results[l] ?? []).map((x) => x.meanMs))
    const cpu = (l: string) => median((results[l] ?? []).map((x) => x.cpuUsPerRequest))
    const ratios = paired(results.B ?? [], results.A ?? [], (b, a) => ratio(b.rps, a.rps))
    console.log(
      `c=${c}: A ${fmtInt(rps('A'))} rps (${fmt(lat('A'), 3)} ms), B ${fmtInt(rps('B'))} rps (${fmt(lat('B'), 3)} ms); ` +
        `B/A ${fmt(rps('B') / rps('A'), 3)}, median per-round ratio ${fmt(median(ratios), 3)} (${ratios.map((x) => fmt(x, 2)).join(' ')})\n` +
        `c=${c}: gateway CPU per request, median: A ${fmt(cpu('A'), 1)} µs, B ${fmt(cpu('B'), 1)} µs; B/A ${fmt(cpu('B') / cpu('A'), 3)}\n`,
    )
  }
}

async function cold(rounds: number): Promise<void> {
  const rows: Array<{ name: string; floor: string; sampler: ColdSampler }> = []
  const floors = new Map<string, ColdSampler>([...new Set([nodes.A, nodes.B])].map((node) => [node, bareFloorSampler(node)]))
  for (const [node, sampler] of floors) rows.push({ name: `floor (${node})`, floor: node, sampler })
  for (const label of ['A', 'B'] as const) {
    const main = join(resolve(checkouts[label] as string), 'dist', 'node', 'main.js')
    const gateway = (pool: string) => ({ main, node: nodes[label], env: { ...envOf(label), PREWARM_POOL_SIZE: pool } })
    const name = `${label} cold`
    rows.push({
      name,
      floor: nodes[label],
      sampler: await gatewayColdSampler({ name, pluginId: 'echo', route: '/items/1', gateway: gateway('0') }),
    })
    if (process.argv.includes('--pool')) {
      const pooled = `${label} prewarmed`
      const sampler = await gatewayColdSampler({
        name: pooled,
        pluginId: 'echo',
        route: '/items/1',
        gateway: gateway('1'),
        beforeSample: prewarmedReady,
      })
      rows.push({ name: pooled, floor: nodes[label], sampler })
    }
  }
  const ms = new Map<string, number[]>(rows.map((r) => [r.name, []]))
  const warmup = 3
  for (let i = 0; i < warmup + rounds; i++) {
    for (let k = 0; k < rows.length; k++) {
      const row = rows[(k + i) % rows.length] as (typeof rows)[number]
      const { ms: t } = await row.sampler.sample()
      if (i >= warmup) ms.get(row.name)?.push(t)
    }
  }
  const p50 = (name: string) => summarize(ms.get(name) ?? []).p50
  for (const row of rows) {
    const s = summarize(ms.get(row.name) ?? [])
    const vsFloor = ratio(s.p50, p50(`floor (${row.floor})`))
    console.log(`${row.name.padEnd(60)} n=${s.n} p50 ${fmt(s.p50)} ms  p95 ${fmt(s.p95)} ms  ÷ floor ${fmt(vsFloor, 2)}×`)
  }
  for (const kind of ['cold', 'prewarmed']) {
    const [a, b] = [ms.get(`A ${kind}`), ms.get(`B ${kind}`)]
    if (!a || !b) continue
    const perRound = b.map((x, i) => ratio(x, a[i] as number))
    console.log(`B/A ${kind}: p50 ${fmt(p50(`B ${kind}`) / p50(`A ${kind}`), 3)}, median per-round ratio ${fmt(median(perRound), 3)}`)
  }
  await Promise.all(rows.map((r) => r.sampler.stop()))
}

async function startup(rounds: number): Promise<void> {
  const samples = { A: { ms: [] as number[], rss: [] as number[] }, B: { ms: [] as number[], rss: [] as number[] } }
  const sample = async (label: 'A' | 'B') => {
    const t0 = performance.now()
    const gw = await startBenchGateway({
      name: `gateway ${label}`,
      main: join(resolve(checkouts[label] as string), 'dist', 'node', 'main.js'),
      node: nodes[label],
      nodeArgs: nodeArgsOf(label),
      env: { ...envOf(label), PREWARM_POOL_SIZE: '0' },
    })
    const ms = performance.now() - t0
    await gw.enable('ab', 'echo')
    const res = await gw.get('ab', 'echo', '/items/1')
    if (res.status !== 200) throw new Error(`${label}: answered ${res.status} ${res.body}`)
    const rss = mb(rssBytes(gw.pid))
    await gw.stop()
    return { ms, rss }
  }
  const warmup = 2
  for (let i = 0; i < warmup + rounds; i++) {
    for (const label of i % 2 === 0 ? (['A', 'B'] as const) : (['B', 'A'] as const)) {
      const { ms, rss } = await sample(label)
      if (i < warmup) continue
      samples[label].ms.push(ms)
      samples[label].rss.push(rss)
    }
  }
  for (const label of ['A', 'B'] as const) {
    const { ms, rss } = samples[label]
    console.log(
      `${label} (${nodes[label]}): start → listening p50 ${fmt(median(ms))} ms (p95 ${fmt(summarize(ms).p95)}), RSS after one request p50 ${fmt(median(rss))} MB, n=${ms.length}`,
    )
  }
  const perRound = paired(samples.B.ms, samples.A.ms, ratio)
  const rssDiff = paired(samples.B.rss, samples.A.rss, (b, a) => b - a)
  console.log(`B/A start-up: median per-round ratio ${fmt(median(perRound), 3)}; RSS B − A: median per round ${fmt(median(rssDiff))} MB`)
}

interface ClusterSide {
  label: 'A' | 'B'
  owner: { url: string; pid: number }
  /** What the load lands on to be forwarded to the owner. */
  other: { url: string; pid: number }
  workerPid: number
}

async function startCluster(label: 'A' | 'B', dir: string, db: string): Promise<ClusterSide> {
  const gateway = (id: string) =>
    startBenchGateway({
      name: `gateway ${label} (${id})`,
      main: join(resolve(dir), 'dist', 'node', 'main.js'),
      nodeArgs: nodeArgsOf(label),
      node: nodes[label],
      env: {
        ...envOf(label),
        DATABASE_URL: `file:${db}`,
        CLUSTER_SECRET: 'ab-cluster-secret-0123456789',
        GATEWAY_ID: id,
        PREWARM_POOL_SIZE: '0',
      },
    })
  const owner = await gateway('owner')
  const other = await gateway('other')
  await owner.enable('ab', 'echo')
  for (const gw of [owner, other]) {
    const res = await gw.get('ab', 'echo', '/items/1') // the owner first: it takes the lease and starts the worker
    if (res.status !== 200 || (res.headers['x-plugin-cold-start'] === '1' && gw === other)) {
      throw new Error(`${label}: warm-up answered ${res.status} ${res.body}`)
    }
  }
  const worker = (await owner.workers()).find((w) => w.state === 'ready')
  if (!worker?.pid) throw new Error(`${label}: the owner has no ready worker`)
  return { label, owner, other, workerPid: worker.pid }
}

async function referenceInFront(name: keyof typeof REFERENCES, a: ClusterSide): Promise<ClusterSide> {
  const proxy = await REFERENCES[name](a.owner.url)
  return { label: 'B', owner: a.owner, other: { url: proxy.url, pid: proxy.pid }, workerPid: a.workerPid }
}

async function clustered(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'plugin-gateway-ab-cluster-'))
  try {
    const a = await startCluster('A', checkouts.A as string, join(dir, 'a.db'))
    const dirB = checkouts.B as string
    const b =
      dirB in REFERENCES ? await referenceInFront(dirB as keyof typeof REFERENCES, a) : await startCluster('B', dirB, join(dir, 'b.db'))
    const sides = [a, b]
    const paths = sides.flatMap((s) => [
      { name: `${s.label} owner`, side: s, gw: s.owner },
      { name: `${s.label} forwarded`, side: s, gw: s.other },
    ])
    const c = Math.max(...connections)
    type Sample = { rps: number; cpu: Record<string, number>; runs: Record<string, number> }
    const results = new Map<string, Sample[]>(paths.map((p) => [p.name, []]))
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < paths.length; k++) {
        const path = paths[(k + r) % paths.length] as (typeof paths)[number]
        const url = `${path.gw.url}/orgs/ab/plugins/echo/items/1`
        const pids = {
          owner: path.side.owner.pid,
          'non-owner': path.side.other.pid,
          worker: path.side.workerPid,
          'load generator': process.pid,
        }
        await measureLoad(url, { connections: c, durationS: 0.5, warmupS: 0 })
        const per = (read: (pid: number) => number) => {
          const before = Object.entries(pids).map(([n, pid]) => [n, pid, read(pid)] as const)
          return (requests: number) => Object.fromEntries(before.map(([n, pid, was]) => [n, (read(pid) - was) / requests]))
        }
        const [cpuOf, runsOf] = [per(cpuNs), per(runPeriods)]
        const load = await measureLoad(url, { connections: c, durationS: seconds, warmupS: 0 })
        const [cpu, runs] = [cpuOf(load.requests * 1000), runsOf(load.requests)]
        results.get(path.name)?.push({ rps: load.rps, cpu, runs })
      }
      const show = (name: string) => `${name} ${fmtInt(results.get(name)?.at(-1)?.rps)}`
      console.log(`c=${c} round ${r + 1}: ${paths.map((p) => show(p.name)).join(', ')} rps`)
    }
    for (const s of sides) {
      const [own, fwd] = [results.get(`${s.label} owner`) ?? [], results.get(`${s.label} forwarded`) ?? []]
      const ratios = paired(fwd, own, (f, o) => ratio(f.rps, o.rps))
      console.log(
        `${s.label}: owner ${fmtInt(median(own.map((x) => x.rps)))} rps, forwarded ${fmtInt(median(fwd.map((x) => x.rps)))} rps; ` +
          `forwarded/owner median per-round ${fmt(median(ratios), 3)} (${ratios.map((x) => fmt(x, 2)).join(' ')})`,
      )
      for (const [name, samples] of [
        ['owner', own],
        ['forwarded', fwd],
      ] as const) {
        const split = Object.keys(samples[0]?.cpu ?? {}).map((n) => [n, median(samples.map((x) => x.cpu[n] as number))] as const)
        const total = median(samples.map((x) => Object.values(x.cpu).reduce((a, b) => a + b, 0)))
        console.log(
          `  ${name.padEnd(9)} CPU µs/req, medians: ${split.map(([n, us]) => `${n} ${fmt(us, 1)}`).join(', ')}; all ${fmt(total, 1)}`,
        )
        const runs = Object.keys(samples[0]?.runs ?? {}).map((n) => `${n} ${fmt(median(samples.map((x) => x.runs[n] as number)), 2)}`)
        console.log(`  ${''.padEnd(9)} times put on a CPU per request, medians: ${runs.join(', ')}`)
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
