// npm run bench [-- --quick] [-- --only=throughput,cold-start] [-- --no-write]
//
// Runs every scenario in one go, each with its own gateway process (dist/, so build first: the npm
// script does), and writes the dated report between the markers in BENCHMARKS.md. Loopback only;
// every run is bounded; every process started is stopped and checked gone by pid at the end.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import { cluster } from './bench/cluster.js'
import { coldStart } from './bench/cold-start.js'
import { fanout } from './bench/fanout.js'
import { herd } from './bench/herd.js'
import { closeHttp } from './bench/lib/http.js'
import { findBinary, GATEWAY_MAIN, ROOT } from './bench/lib/paths.js'
import { leftovers, stopAll, trackedPidCount } from './bench/lib/procs.js'
import { failedSection, renderSection, renderTable, renderTargets, type Section } from './bench/lib/report.js'
import { metadataCache } from './bench/metadata-cache.js'
import { noIpcStart } from './bench/no-ipc-start.js'
import { peerHops } from './bench/peer-hops.js'
import { reaper } from './bench/reaper.js'
import { throughput } from './bench/throughput.js'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const only = args
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',')
const write = !args.includes('--no-write')

interface Scenario {
  id: string
  title: string
  /** Upper bound on the scenario's run time; past it, its processes are stopped and it is reported failed. */
  timeoutS: number
  run(): Promise<Section>
}

const SCENARIOS: Scenario[] = [
  {
    id: 'throughput',
    title: 'Warm proxy throughput and latency',
    timeoutS: 600,
    run: () =>
      throughput(
        quick
          ? { durationS: 2, warmupS: 1, rounds: 1, connections: [1, 32] }
          : { durationS: 2, warmupS: 0.5, rounds: 8, connections: [1, 32] },
      ),
  },
  { id: 'cold-start', title: 'Cold start to first byte', timeoutS: 300, run: () => coldStart({ runs: quick ? 10 : 40, warmupRuns: 3 }) },
  {
    id: 'no-ipc-start',
    title: 'Runners without IPC readiness',
    timeoutS: 300,
    run: () => noIpcStart({ runs: quick ? 10 : 30, warmupRuns: 3 }),
  },
  { id: 'herd', title: 'Thundering herd', timeoutS: 120, run: () => herd({ requests: 500 }) },
  {
    id: 'fanout',
    title: 'Fan-out under MAX_WORKERS',
    timeoutS: 300,
    run: () => fanout({ orgs: quick ? 80 : 200, maxWorkers: quick ? 20 : 50, concurrency: 8 }),
  },
  { id: 'reaper', title: 'Reaper precision', timeoutS: 120, run: () => reaper({ idleMs: 1000, samples: 8 }) },
  { id: 'metadata', title: 'Metadata cache', timeoutS: 120, run: () => metadataCache({ restarts: 6 }) },
  {
    id: 'cluster',
    title: 'Cluster: owner vs non-owner',
    timeoutS: 300,
    run: () =>
      cluster(
        quick
          ? { durationS: 2, warmupS: 1, rounds: 1, connections: [1, 32] }
          : { durationS: 3, warmupS: 0.5, rounds: 3, connections: [1, 32] },
      ),
  },
  {
    id: 'peer-hops',
    title: 'Cluster: the second hop by transport',
    timeoutS: 300,
    run: () => peerHops({ durationS: quick ? 2 : 3, warmupS: 0.5, rounds: quick ? 1 : 3, connections: 32 }),
  },
]

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping every process the bench started…\n`)
    void stopAll().finally(() => process.exit(130))
  })
}

async function runBounded(s: Scenario): Promise<Section> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish within ${s.timeoutS} s`)), s.timeoutS * 1000)
  })
  const t0 = performance.now()
  process.stderr.write(`▶ ${s.title}…\n`)
  try {
    const section = await Promise.race([s.run(), timeout])
    process.stderr.write(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`)
    return section
  } catch (err) {
    process.stderr.write(`  FAILED: ${(err as Error).stack ?? String(err)}\n`)
    await stopAll() // a timed-out scenario may still hold processes
    return failedSection(s.title, err)
  } finally {
    clearTimeout(timer)
  }
}

function machine(): string[][] {
  const cpu = cpus()
  const git = (...a: string[]) => {
    try {
      return execFileSync('git', a, { cwd: ROOT, encoding: 'utf8' }).trim()
    } catch {
      return '?'
    }
  }
  const nginx = findBinary('nginx')
  let nginxVersion = 'not installed'
  if (nginx) {
    try {
      nginxVersion = execFileSync(nginx, ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim() || 'installed'
    } catch (err) {
      nginxVersion = String((err as { stderr?: string }).stderr ?? 'installed').trim()
    }
  }
  return [
    ['date', new Date().toISOString()],
    ['cpu', `${cpu[0]?.model ?? '?'} × ${cpu.length} cores`],
    ['memory', `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`],
    ['node', process.version],
    [
      'load average at start (1/5/15 min)',
      loadavg()
        .map((l) => l.toFixed(2))
        .join(' / '),
    ],
    ['nginx', nginxVersion.replace(/^nginx version: /, '')],
    [
      'commit',
      `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no', 'src') ? ' (+ uncommitted changes in src/)' : ''}`,
    ],
    ['mode', quick ? 'quick (shorter runs; not for the record)' : 'full'],
  ]
}

const BEGIN = '<!-- bench:begin (generated by `npm run bench`; text outside these markers is kept) -->'
const END = '<!-- bench:end -->'

function writeReport(body: string): void {
  const file = join(ROOT, 'BENCHMARKS.md')
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\n'
  const start = current.indexOf(BEGIN.slice(0, 20))
  const end = current.indexOf(END)
  const next =
    start >= 0 && end > start
      ? `${current.slice(0, start)}${BEGIN}\n${body}\n${END}${current.slice(end + END.length)}`
      : `${current.trimEnd()}\n\n${BEGIN}\n${body}\n${END}\n`
  writeFileSync(file, next)
}

async function main(): Promise<number> {
  if (!existsSync(GATEWAY_MAIN)) throw new Error(`${GATEWAY_MAIN} is missing: run npm run build first`)
  const selected = SCENARIOS.filter((s) => !only || only.includes(s.id))
  const info = machine()
  const sections: Section[] = []
  for (const s of selected) sections.push(await runBounded(s))

  await stopAll()
  await closeHttp()
  const left = leftovers()
  for (const p of left) process.kill(p.pid, 'SIGKILL')

  info.push([
    'load average at end (1/5/15 min)',
    loadavg()
      .map((l) => l.toFixed(2))
      .join(' / '),
  ])
  const lines = [
    `## Latest run`,
    '',
    renderTable({ headers: ['', ''], rows: info }),
    '',
    '### Targets (reported, not asserted)',
    '',
    renderTargets(sections.flatMap((s) => s.targets)),
    '',
    ...sections.map((s, i) => renderSection(s, i + 1)),
    `Processes: ${trackedPidCount()} pids started or seen under the bench's processes; ` +
      `${left.length === 0 ? 'none' : left.map((p) => `${p.pid} (${p.name})`).join(', ')} left running after the run.`,
  ]
  const body = lines.join('\n')
  process.stdout.write(`${body}\n`)
  // Only a full run of every scenario is the record.
  if (write && !only && !quick) writeReport(body)
  else if (write) process.stderr.write(`(${only ? '--only' : '--quick'}: BENCHMARKS.md left unchanged)\n`)
  return left.length === 0 ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
    await stopAll()
    process.exit(1)
  },
)
