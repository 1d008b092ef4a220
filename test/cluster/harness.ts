// n real gateway processes on one libSQL file, clustered (README: Several gateways on one database).
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { silentLogger } from '../../src/core/index.js'
import { createClusterRepo, createInstancesRepo, openDatabase } from '../../src/db/index.js'
import { tempDir } from '../helpers/gateway.js'
import { startGatewayProcess, workersOf, type GatewayProcess } from '../helpers/gateway-process.js'

export const SECRET = 'cluster-secret-0123456789'

/** n real gateway processes on one libSQL file, clustered. */
export async function startCluster(n: number, env: Record<string, string> = {}) {
  const dir = await tempDir()
  const envOf = (i: number, extra: Record<string, string>) => ({
    CLUSTER_SECRET: SECRET,
    SECRET_KEY: '0'.repeat(64),
    GATEWAY_ID: `gw${i}`,
    LEASE_TTL_MS: '3000', // a gateway stalled on a loaded machine must not lose its leases mid-test
    HEARTBEAT_MS: '250',
    ...env,
    ...extra,
  })
  const gateways: GatewayProcess[] = []
  for (let i = 0; i < n; i++) gateways.push(await startGatewayProcess(dir, envOf(i, {})))
  /** Stops gateway i (SIGTERM: it stops its workers) and starts it again, same id, env changed by extra. */
  async function restart(i: number, extra: Record<string, string>): Promise<GatewayProcess> {
    const old = gateways[i]!
    old.proc.child.kill('SIGTERM')
    await old.proc.exited
    gateways[i] = await startGatewayProcess(dir, envOf(i, extra))
    return gateways[i]
  }
  const db = await openDatabase({ url: `file:${join(dir, 'gateway.db')}`, log: silentLogger })
  onTestFinished(() => db.close())
  const clock = { now: Date.now, setTimer: () => () => {} }
  const repo = createClusterRepo(db.db, clock)
  const instances = createInstancesRepo(db.db, clock)
  const allWorkers = async () => (await Promise.all(gateways.filter(alive).map((g) => workersOf(g.url)))).flat()
  return { dir, gateways, restart, repo, instances, allWorkers }
}

export const alive = (g: GatewayProcess) => g.proc.child.exitCode === null && g.proc.child.signalCode === null
