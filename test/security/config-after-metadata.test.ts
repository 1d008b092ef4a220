import { join } from 'node:path'
import { createClient } from '@libsql/client'
import { describe, expect, it, onTestFinished } from 'vitest'
import { isSealed, MASK, sealConfig } from '../../src/secrets/index.js'
import { secretBoxFromHex } from '../../src/secrets/node/index.js'
import { startTestGateway, TEST_SECRET_KEY, type TestGateway } from '../helpers/gateway.js'

// Before a v2 plugin has started, its configSchema is unknown and every config value is stored
// sealed (README, Security). Once its metadata arrives, only the fields it marks `encrypted` stay so.

async function adminConfig(t: TestGateway, orgId: string, pluginId: string): Promise<Record<string, unknown>> {
  const res = await t.admin('GET', `/orgs/${orgId}/plugins/${pluginId}`)
  expect(res.status).toBe(200)
  return res.body.config
}

async function firstStart(t: TestGateway, orgId: string, pluginId: string): Promise<void> {
  const res = await t.admin('POST', `/orgs/${orgId}/plugins/${pluginId}/start`)
  expect(res.status).toBe(200)
}

describe('stored config once the schema is known', () => {
  it('stores and shows non-secret values as they are after the first metadata fetch, for every org; secret ones stay sealed', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo', { prefix: 'hello', unknownField: 7 })
    await t.enable('beta', 'echo', { prefix: 'bonjour' })
    await t.enable('acme', 'webhook', { webhookSecret: 'whsec_stays_sealed' })
    expect(await adminConfig(t, 'acme', 'echo')).toEqual({ prefix: MASK, unknownField: MASK }) // schema unknown yet

    await firstStart(t, 'acme', 'echo') // one metadata fetch serves every org of the plugin
    expect(await adminConfig(t, 'acme', 'echo')).toEqual({ prefix: 'hello', unknownField: 7 })
    expect(await adminConfig(t, 'beta', 'echo')).toEqual({ prefix: 'bonjour' })
    expect((await t.instanceRow('beta', 'echo'))?.config).toEqual({ prefix: 'bonjour' }) // in the database file itself
    const echoed = await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)
    expect(((await echoed.json()) as { prefix: unknown }).prefix).toBe('hello')

    await firstStart(t, 'acme', 'webhook')
    expect(await adminConfig(t, 'acme', 'webhook')).toEqual({ webhookSecret: MASK })
    expect(isSealed((await t.instanceRow('acme', 'webhook'))?.config.webhookSecret)).toBe(true)
  })

  it('opens at start-up the non-secret values an earlier version left sealed under a known schema', async () => {
    const first = await startTestGateway()
    await first.enable('acme', 'echo')
    await firstStart(first, 'acme', 'echo') // the schema is known from here on
    await first.gw.close()

    // What a gateway before this change stored: the value sealed although the schema says it is not secret.
    const box = secretBoxFromHex(TEST_SECRET_KEY)
    const sealed = sealConfig(box, { orgId: 'acme', pluginId: 'echo' }, null, { prefix: 'was-sealed' })
    const client = createClient({ url: `file:${join(first.dir, 'gateway.db')}` })
    onTestFinished(() => client.close())
    await client.execute({
      sql: "update plugin_instances set config = ? where org_id = 'acme' and plugin_id = 'echo'",
      args: [JSON.stringify(sealed)],
    })

    const second = await startTestGateway({ dir: first.dir })
    expect((await second.instanceRow('acme', 'echo'))?.config).toEqual({ prefix: 'was-sealed' })
    expect(await adminConfig(second, 'acme', 'echo')).toEqual({ prefix: 'was-sealed' })
  })
})
