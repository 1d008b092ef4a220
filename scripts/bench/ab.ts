// A/B of the warm proxy path between two checkouts (e.g. before and after an optimisation), each
// built, each gateway in its own process with its own warm echo worker. By default A and B are
// loaded at the same time (--together), so background load on a shared machine hits both alike and
// the per-round B/A ratio is paired; --alternate runs them one after the other instead.
//
//   npx tsx scripts/bench/ab.ts --a=/path/to/checkout-a --b=/path/to/checkout-b [--rounds=6] [--seconds=3] [--connections=1,32] [--alternate]
//     [--a-node-args="--max-semi-space-size=4"] [--b-node-args=…]   (node flags for one side's gateway)
import { join, resolve } from 'node:path'
import { startBenchGateway, type BenchGateway } from './lib/gateway.js'
import { closeHttp } from './lib/http.js'
import { measureLoad, type LoadResult } from './lib/load.js'
import { leftovers, stopAll } from './lib/procs.js'
import { fmt, fmtInt, mean, median, paired, ratio } from './lib/stats.js'

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const checkouts = { A: arg('a'), B: arg('b') }
if (!checkouts.A || !checkouts.B) throw new Error('usage: --a=<checkout> --b=<checkout>')
const rounds = Number(arg('rounds') ?? 6)
const seconds = Number(arg('seconds') ?? 3)
const connections = (arg('connections') ?? '1,32').split(',').map(Number)
const together = !process.argv.includes('--alternate')

async function start(label: 'A' | 'B', dir: string): Promise<{ label: string; gw: BenchGateway; url: string }> {
  const nodeArgs = (arg(`${label.toLowerCase()}-node-args`) ?? '').split(' ').filter(Boolean)
  const gw = await startBenchGateway({ name: `gateway ${label}`, main: join(resolve(dir), 'dist', 'node', 'main.js'), nodeArgs })
  await gw.enable('ab', 'echo')
  const res = await gw.get('ab', 'echo', '/items/1')
  if (res.status !== 200) throw new Error(`${label}: warm-up answered ${res.status} ${res.body}`)
  return { label, gw, url: `${gw.url}/orgs/ab/plugins/echo/items/1` }
}

try {
  const sides = [await start('A', checkouts.A), await start('B', checkouts.B)]
  for (const c of connections) {
    const results: Record<string, LoadResult[]> = { A: [], B: [] }
    for (let r = 0; r < rounds; r++) {
      const measure = (side: (typeof sides)[number]) =>
        measureLoad(side.url, { connections: c, durationS: seconds, warmupS: 0.5, cpuPids: [side.gw.pid] })
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
} finally {
  await stopAll()
  await closeHttp()
  const left = leftovers()
  if (left.length > 0) console.error('left running:', left)
}
