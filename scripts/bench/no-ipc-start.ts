// Scenario: runners without IPC readiness (Hay's). The gateway finds them ready by probing /health;
// each row compares its start-to-ready with the same runner started alone, spawn to the /health that
// names the org, sampled in turns in the same run.
import { request } from 'node:http'
import { join } from 'node:path'
import getPort from 'get-port'
import { startBenchGateway, type BenchGateway } from './lib/gateway.js'
import { hayPlugin } from './lib/hay.js'
import { pollUntil } from './lib/http.js'
import { EXAMPLES_DIR, ROOT } from './lib/paths.js'
import { minimalEnv, startProcess } from './lib/procs.js'
import { target, type Section, type Target } from './lib/report.js'
import { fmt, median, paired, ratio, summarize } from './lib/stats.js'

export interface NoIpcStartOptions {
  runs: number
  warmupRuns: number
}

/** The fixture's onStart takes this long after it listens (its /health says orgId null until then). */
const FIXTURE_START_MS = 100
const FIXTURE = join(ROOT, 'test', 'fixtures', 'runners', 'late-start-runner.mjs')
const ORG = 'bench'
const GOAL = 1.1

interface Runner {
  name: string
  /** The runner command line before the contract's arguments. */
  command: string[]
  pluginsDir: string
  pluginId: string
}

function runners(): Array<Runner | { name: string; skipped: string }> {
  const fixture: Runner = {
    name: `fixture runner, onStart ${FIXTURE_START_MS} ms after it listens (test/fixtures/runners/late-start-runner.mjs)`,
    command: [process.execPath, FIXTURE, `--start-ms=${FIXTURE_START_MS}`],
    pluginsDir: EXAMPLES_DIR, // the fixture ignores the plugin; any v2 plugin of the catalog names it
    pluginId: 'echo',
  }
  const hay = hayPlugin()
  const hayName = "Hay's runner"
  if ('skipped' in hay) return [fixture, { name: hayName, skipped: hay.skipped }]
  const { pluginsDir, pluginId } = hay
  return [fixture, { name: `${hayName} with its ${pluginId} plugin`, command: [process.execPath, hay.runner], pluginsDir, pluginId }]
}

interface Sampler {
  alone(): Promise<number>
  /** Start-to-ready through the gateway, and the gateway's own spawn-to-ready ('worker ready' log line). */
  gateway(): Promise<{ ms: number; gatewaySideMs: number }>
  stop(): Promise<void>
}

export async function noIpcStart(opts: NoIpcStartOptions): Promise<Section> {
  const rows: string[][] = []
  const notes: string[] = []
  const targets: Target[] = []
  for (const r of runners()) {
    const goalName = `start-to-ready vs the runner alone, ${r.name.split(',')[0]}`
    if ('skipped' in r) {
      rows.push([r.name, '0', '—', '—', '—', '—', `skipped: ${r.skipped}`])
      targets.push(target(goalName, `≤ ${GOAL}×`, `skipped: ${r.skipped}`, null))
      continue
    }
    const sampler = await samplerFor(r)
    const alone: number[] = []
    const through: number[] = []
    const gatewaySide: number[] = []
    try {
      for (let i = 0; i < opts.warmupRuns + opts.runs; i++) {
        // Alternate which goes first, so neither always runs on a machine the other just warmed.
        const aloneFirst = i % 2 === 0
        const a = aloneFirst ? await sampler.alone() : NaN
        const g = await sampler.gateway()
        const aloneMs = aloneFirst ? a : await sampler.alone()
        if (i < opts.warmupRuns) continue
        alone.push(aloneMs)
        through.push(g.ms)
        gatewaySide.push(g.gatewaySideMs)
      }
    } finally {
      await sampler.stop()
    }
    const s = summarize(alone)
    const g = summarize(through)
    const r50 = ratio(g.p50, s.p50)
    const pairedRatio = median(paired(through, alone, (x, y) => x / y))
    rows.push([`${r.name}: alone, spawn → /health naming the org`, String(s.n), fmt(s.p50), fmt(s.p95), fmt(s.min), fmt(s.max), '1.00×'])
    rows.push([
      `${r.name}: through the gateway, POST …/start → answered`,
      String(g.n),
      fmt(g.p50),
      fmt(g.p95),
      fmt(g.min),
      fmt(g.max),
      `${fmt(r50, 2)}×`,
    ])
    notes.push(
      `${r.name}: median of the per-round ratios ${fmt(pairedRatio, 2)}×; the gateway's own spawn → ready ` +
        `(its 'worker ready' log line) p50 ${fmt(median(gatewaySide))} ms, so the admin call around it adds ${fmt(g.p50 - median(gatewaySide))} ms.`,
    )
    targets.push(
      target(goalName, `≤ ${GOAL}×`, `${fmt(r50, 2)}× (${fmt(g.p50)} vs ${fmt(s.p50)} ms)`, Number.isFinite(r50) ? r50 <= GOAL : null),
    )
  }
  return {
    title: 'Runners without IPC readiness',
    method:
      `${opts.runs} rounds per runner after ${opts.warmupRuns} discarded; each round times the runner started alone and through ` +
      `the gateway, in alternating order. Alone: spawned by the bench with the contract's arguments, the worker's minimal env plus ` +
      `HAY_ORG_CONFIG, output piped and drained as the gateway does, then GET /health every 1 ms until a 200 that names the org ` +
      `(what the gateway waits for: Hay's runner answers /health before its onStart has run, saying "orgId": null until then). ` +
      `Through the gateway (its own process, PREWARM_POOL_SIZE=0, metadata already fresh): the worker is stopped through the ` +
      `admin API, then POST /admin/orgs/${ORG}/plugins/<id>/start is timed until it answers with the ready worker.`,
    tables: [{ headers: ['row', 'n', 'p50 ms', 'p95 ms', 'min ms', 'max ms', 'p50 ÷ alone p50'], rows }],
    notes,
    targets,
  }
}

async function samplerFor(r: Runner): Promise<Sampler> {
  const gw = await startBenchGateway({
    name: `gateway (${r.name})`,
    env: {
      PREWARM_POOL_SIZE: '0',
      RUNNER_COMMAND: r.command.join(' '),
      PLUGINS_DIR: r.pluginsDir,
      LOG_LEVEL: 'info', // for the 'worker ready' lines and their timing
    },
  })
  const readyMs: number[] = []
  gw.proc.onLine((line) => {
    if (!line.includes('"worker ready"')) return
    const ms = (JSON.parse(line) as { ms?: unknown }).ms
    if (typeof ms === 'number') readyMs.push(ms)
  })
  try {
    await gw.enable(ORG, r.pluginId)
    await startThroughGateway(gw, r) // the first start fetches metadata: not a sample
    return {
      alone: () => startAlone(r),
      async gateway() {
        await gw.stopWorker(ORG, r.pluginId)
        const before = readyMs.length
        const ms = await startThroughGateway(gw, r)
        // The log line may reach us after the answer (the logger writes asynchronously): wait, untimed.
        const logged = await pollUntil(
          "the 'worker ready' line",
          () => (readyMs.length > before ? readyMs.at(-1) : undefined),
          2_000,
          1,
        ).catch(() => NaN)
        return { ms, gatewaySideMs: logged }
      },
      stop: () => gw.stop(),
    }
  } catch (err) {
    await gw.stop()
    throw err
  }
}

async function startThroughGateway(gw: BenchGateway, r: Runner): Promise<number> {
  const t0 = performance.now()
  const res = await gw.admin<{ worker?: { state?: string } }>('POST', `/orgs/${ORG}/plugins/${r.pluginId}/start`)
  const ms = performance.now() - t0
  if (res.worker?.state !== 'ready') throw new Error(`${r.name}: start answered ${JSON.stringify(res).slice(0, 200)}`)
  return ms
}

async function startAlone(r: Runner): Promise<number> {
  const port = await getPort({ host: '127.0.0.1' })
  const dir = join(r.pluginsDir, r.pluginId)
  const [command = process.execPath, ...args] = r.command
  const contract = [`--plugin-path=${dir}`, `--org-id=${ORG}`, `--port=${port}`, '--mode=production']
  const env = minimalEnv({ HAY_ORG_CONFIG: JSON.stringify({ org: { id: ORG }, config: {} }) })
  const started = performance.now()
  const proc = startProcess(`${r.name} alone`, command, [...args, ...contract], { env, cwd: dir })
  try {
    return (await healthNamingOrg(port, ORG)) - started
  } finally {
    await proc.stop()
  }
}

/** Resolves with the time of the first /health 200 whose body names orgId, polling every 1 ms. */
function healthNamingOrg(port: number, orgId: string, timeoutMs = 10_000): Promise<number> {
  const deadline = performance.now() + timeoutMs
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (performance.now() > deadline) return reject(new Error(`no /health naming ${orgId} on port ${port} within ${timeoutMs} ms`))
      const req = request({ host: '127.0.0.1', port, path: '/health', agent: false }, (res) => {
        let body = ''
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk))
        res.on('end', () => {
          const at = performance.now()
          let named = false
          try {
            named = (JSON.parse(body) as { orgId?: unknown }).orgId === orgId
          } catch {
            // not JSON yet: keep polling
          }
          if (res.statusCode === 200 && named) resolve(at)
          else setTimeout(attempt, 1)
        })
      })
      req.on('error', () => setTimeout(attempt, 1))
      req.end()
    }
    attempt()
  })
}
