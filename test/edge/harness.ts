// Builds the edge bundle the way a deploy does (wrangler, from wrangler.toml) and runs it in
// Miniflare (workerd) in front of real Node gateways.
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Miniflare } from 'miniflare'
import { onTestFinished } from 'vitest'
import { ROOT } from '../helpers/gateway.js'

const run = promisify(execFile)

async function compatibilityDate(): Promise<string> {
  const toml = await readFile(join(ROOT, 'wrangler.toml'), 'utf8')
  const date = /^compatibility_date\s*=\s*"([\d-]+)"/m.exec(toml)?.[1]
  if (!date) throw new Error('wrangler.toml has no compatibility_date')
  return date
}

let bundle: Promise<string> | undefined

/**
 * `wrangler deploy --dry-run`: bundles src/edge/worker.ts without nodejs_compat, so any node:* import
 * anywhere in the edge's graph fails this build. Built once per test file.
 */
export function buildEdgeBundle(): Promise<string> {
  bundle ??= (async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'plugin-gateway-edge-'))
    try {
      await run(process.execPath, [join(ROOT, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', outDir], {
        cwd: ROOT,
        env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: '1', NO_COLOR: '1' },
      })
      return await readFile(join(outDir, 'worker.js'), 'utf8')
    } finally {
      await rm(outDir, { recursive: true, force: true })
    }
  })()
  return bundle
}

export interface Edge {
  mf: Miniflare
  /** What the Worker wrote to its console (our JSON log lines), in order. */
  logs: string[]
}

/** A workerd instance running the edge bundle with the given GATEWAY_ORIGINS; disposed after the test. */
export async function startEdge(gatewayOrigins: string): Promise<Edge> {
  const logs: string[] = []
  const mf = new Miniflare({
    modules: true,
    script: await buildEdgeBundle(),
    compatibilityDate: await compatibilityDate(),
    bindings: { GATEWAY_ORIGINS: gatewayOrigins },
    handleStructuredLogs: ({ message }: { message: string }) => void logs.push(message),
  })
  onTestFinished(() => mf.dispose())
  await mf.ready
  return { mf, logs }
}
