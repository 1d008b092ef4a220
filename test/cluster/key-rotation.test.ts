// README, Rotating SECRET_KEY: several gateways on one database, without downtime, in three steps.
import { join } from 'node:path'
import { createClient } from '@libsql/client'
import { describe, expect, it, onTestFinished } from 'vitest'
import { ROOT } from '../helpers/gateway.js'
import { enable, type GatewayProcess } from '../helpers/gateway-process.js'
import { spawnNode, workerEnv } from '../helpers/process.js'
import { SECRET, startCluster } from './harness.js'

const OLD = 'a1'.repeat(32)
const NEW = 'b2'.repeat(32)

interface WhoAmI {
  orgId: string
  config: { token: string | null; label: string | null }
  auth: { methodId: string; credentials: { apiKey: string } } | null
}

/** The plaintext a worker of the instance sees, reached through gateway g. */
async function seenBy(g: GatewayProcess, orgId: string): Promise<WhoAmI> {
  const res = await fetch(`${g.url}/orgs/${orgId}/plugins/env-probe/whoami`)
  expect(res.status).toBe(200)
  const { pid: _pid, ...seen } = (await res.json()) as WhoAmI & { pid: number }
  return seen
}

describe('rotating SECRET_KEY across two gateways on one database', () => {
  it('keeps every secret readable through both at each of the three steps, and ends with all of them under the new key', async () => {
    // A short lease: a request that finds its owner restarting waits at most that long for the key to move.
    const { dir, gateways, restart } = await startCluster(2, { SECRET_KEY: OLD, LEASE_TTL_MS: '1000' })
    const db = createClient({ url: `file:${join(dir, 'gateway.db')}` })
    onTestFinished(() => db.close())
    /** The key ids the stored secrets of the instances are sealed with, each once. */
    const keyIds = async () => {
      const rows = await db.execute("select config, auth_state from plugin_instances where plugin_id = 'env-probe' order by org_id")
      const text = rows.rows.map((r) => `${r.config} ${r.auth_state}`).join(' ')
      return new Set([...text.matchAll(/"v1:([0-9a-f]{8}):/g)].map((m) => m[1]))
    }
    const expected = (orgId: string): WhoAmI => ({
      orgId,
      config: { token: `token-of-${orgId}`, label: orgId },
      auth: { methodId: 'apiKey', credentials: { apiKey: `good-${orgId}` } },
    })
    const store = async (g: GatewayProcess, orgId: string) => {
      await enable(g.url, orgId, 'env-probe', { enabled: true, config: { token: `token-of-${orgId}`, label: orgId } })
      const auth = await fetch(`${g.url}/admin/orgs/${orgId}/plugins/env-probe/auth`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ methodId: 'apiKey', credentials: { apiKey: `good-${orgId}` } }),
      })
      expect(auth.status).toBe(200)
    }
    /** Restarts gateway i while the other serves the stored secrets, then checks both serve them. */
    const step = async (i: number, env: Record<string, string>, orgs: string[]) => {
      const other = gateways[1 - i]!
      const restarting = restart(i, env)
      for (const orgId of orgs) expect(await seenBy(other, orgId)).toEqual(expected(orgId)) // no downtime
      const back = await restarting
      for (const g of [back, other]) for (const orgId of orgs) expect(await seenBy(g, orgId)).toEqual(expected(orgId))
    }

    await store(gateways[0]!, 'acme')
    expect(await seenBy(gateways[1]!, 'acme')).toEqual(expected('acme'))
    const [oldId] = await keyIds()
    expect(oldId).toMatch(/^[0-9a-f]{8}$/)

    // (1) Each with SECRET_KEY=<old> and SECRET_KEY_PREVIOUS=<new>: all can read both.
    for (const i of [0, 1]) await step(i, { SECRET_KEY: OLD, SECRET_KEY_PREVIOUS: NEW }, ['acme'])
    expect(await keyIds()).toEqual(new Set([oldId]))

    // (2) Each with SECRET_KEY=<new> and SECRET_KEY_PREVIOUS=<old>. Between the two restarts one
    // gateway seals under the new key and the other under the old: each reads what the other wrote.
    await step(0, { SECRET_KEY: NEW, SECRET_KEY_PREVIOUS: OLD }, ['acme'])
    const [newId] = await keyIds() // start-up sealed the stored secrets again under the new key
    expect(newId).not.toBe(oldId)
    expect(await keyIds()).toEqual(new Set([newId]))
    await store(gateways[1]!, 'globex') // still on the old key
    expect(await keyIds()).toEqual(new Set([newId, oldId]))
    expect(await seenBy(gateways[0]!, 'globex')).toEqual(expected('globex'))
    await step(1, { SECRET_KEY: NEW, SECRET_KEY_PREVIOUS: OLD }, ['acme', 'globex'])
    expect(await keyIds()).toEqual(new Set([newId]))

    // (3) Drop SECRET_KEY_PREVIOUS.
    for (const i of [0, 1]) await step(i, { SECRET_KEY: NEW }, ['acme', 'globex'])
    expect(await keyIds()).toEqual(new Set([newId]))

    // The old key alone opens nothing any more: a gateway started with it refuses, naming the key ids.
    const stale = spawnNode([join(ROOT, 'dist', 'node', 'main.js')], {
      env: workerEnv({
        PORT: '0',
        DATABASE_URL: `file:${join(dir, 'gateway.db')}`,
        PLUGINS_DIR: join(ROOT, 'test', 'fixtures', 'plugins'),
        LOG_LEVEL: 'silent',
        CLUSTER_SECRET: SECRET,
        SECRET_KEY: OLD,
      }),
    })
    expect(await stale.exited).toEqual({ code: 1, signal: null })
    expect(stale.stderr()).toMatch(/^plugin-gateway: cannot start \(SECRETS_UNREADABLE\): .*SECRET_KEY/)
    expect(stale.stderr()).toContain(newId)
  })
})
