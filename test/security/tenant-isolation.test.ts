import { describe, expect, it } from 'vitest'
import { MASK } from '../../src/secrets/index.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { rawRequest } from '../helpers/http.js'

interface Whoami {
  pid: number
  orgId: string
  config: { token: string | null; label: string | null }
  auth: { methodId: string; credentials: Record<string, unknown> } | null
}

async function whoami(t: TestGateway, orgId: string): Promise<{ status: number; body: Whoami & { error?: { code: string } } }> {
  const res = await fetch(`${t.url}/orgs/${orgId}/plugins/env-probe/whoami`)
  return { status: res.status, body: (await res.json()) as Whoami & { error?: { code: string } } }
}

const pidOf = (t: TestGateway, orgId: string): number | undefined => t.gw.pool.peek(orgId, 'env-probe')?.pid

describe('tenant isolation', () => {
  it("never reaches another org's plugin through the public path: unknown and disabled orgs are 404s that start nothing", async () => {
    const t = await startTestGateway()
    await t.enable('org-a', 'env-probe', { token: 'token-a' })
    expect(await whoami(t, 'org-a')).toMatchObject({ status: 200, body: { orgId: 'org-a' } })

    const unknown = await whoami(t, 'org-b')
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: 'INSTANCE_NOT_FOUND' } } })
    await t.admin('PUT', '/orgs/org-b/plugins/env-probe', { enabled: false, config: { token: 'token-b' } })
    expect(await whoami(t, 'org-b')).toMatchObject({ status: 404, body: { error: { code: 'INSTANCE_DISABLED' } } })
    // A path that climbs from A's prefix into B's lands on B's rules, not A's worker (sent raw:
    // fetch would normalise the dot-segments before sending, NOTES.md).
    for (const path of [
      '/orgs/org-a/plugins/env-probe/../../../org-b/plugins/env-probe/whoami',
      '/orgs/org-a/plugins/env-probe/%2e%2e/%2e%2e/%2e%2e/org-b/plugins/env-probe/whoami',
      '/orgs/org-a/plugins/env-probe/..%2f..%2f..%2forg-b%2fplugins%2fenv-probe%2fwhoami',
    ]) {
      const res = await rawRequest({ port: t.gw.port, path })
      expect([path, res.status]).toEqual([path, 404])
      expect(res.body.toString()).not.toContain('token-b')
    }
    expect(t.spawned).toHaveLength(1)
    expect(t.gw.pool.list().map((w) => w.orgId)).toEqual(['org-a'])
  })

  it('serves each org from its own worker with its own config and auth; admin reads are per (org, plugin)', async () => {
    const t = await startTestGateway()
    await t.enable('org-a', 'env-probe', { token: 'token-a', label: 'label-a' })
    await t.enable('org-b', 'env-probe', { token: 'token-b', label: 'label-b' })
    expect(
      await t.admin('PUT', '/orgs/org-a/plugins/env-probe/auth', { methodId: 'apiKey', credentials: { apiKey: 'good-a' } }),
    ).toMatchObject({ status: 200 })

    const a = await whoami(t, 'org-a')
    const b = await whoami(t, 'org-b')
    expect(a.body).toMatchObject({
      orgId: 'org-a',
      config: { token: 'token-a', label: 'label-a' },
      auth: { credentials: { apiKey: 'good-a' } },
    })
    expect(b.body).toMatchObject({ orgId: 'org-b', config: { token: 'token-b', label: 'label-b' }, auth: null })
    expect(a.body.pid).toBe(pidOf(t, 'org-a'))
    expect(b.body.pid).toBe(pidOf(t, 'org-b'))
    expect(a.body.pid).not.toBe(b.body.pid)

    // Interleaved traffic never crosses over.
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => whoami(t, i % 2 ? 'org-b' : 'org-a')))
    replies.forEach((r, i) => {
      const org = i % 2 ? 'org-b' : 'org-a'
      expect(r.body).toMatchObject({ orgId: org, pid: pidOf(t, org), config: { token: org === 'org-a' ? 'token-a' : 'token-b' } })
    })

    const adminA = await t.admin('GET', '/orgs/org-a/plugins/env-probe')
    const adminB = await t.admin('GET', '/orgs/org-b/plugins/env-probe')
    expect(adminA.body).toMatchObject({
      orgId: 'org-a',
      auth: { methodId: 'apiKey', configured: true },
      config: { token: MASK },
      worker: { pid: a.body.pid },
    })
    expect(adminB.body).toMatchObject({ orgId: 'org-b', auth: null, config: { token: MASK }, worker: { pid: b.body.pid } })
    expect(await t.admin('GET', '/orgs/org-c/plugins/env-probe')).toMatchObject({
      status: 404,
      body: { error: { code: 'INSTANCE_NOT_FOUND' } },
    })

    // Changing B's config reaches B's worker only.
    expect(await t.admin('PUT', '/orgs/org-b/plugins/env-probe', { config: { token: 'token-b2', label: 'label-b2' } })).toMatchObject({
      status: 200,
    })
    expect((await whoami(t, 'org-a')).body.config).toEqual({ token: 'token-a', label: 'label-a' })
    expect((await whoami(t, 'org-b')).body.config).toEqual({ token: 'token-b2', label: 'label-b2' })
  })

  it("sends an org's MCP tool calls to that org's worker only", async () => {
    const t = await startTestGateway()
    await t.enable('org-a', 'env-probe', { token: 'token-a' })
    await t.enable('org-b', 'env-probe', { token: 'token-b' })
    expect((await whoami(t, 'org-a')).status).toBe(200) // A's worker is running, B's is not
    expect(t.spawned).toHaveLength(1)

    const callB = await t.admin('POST', '/orgs/org-b/plugins/env-probe/mcp/call', { toolName: 'whoami', arguments: {} })
    expect(callB).toMatchObject({ status: 200, body: { structuredContent: { orgId: 'org-b', config: { token: 'token-b' } } } })
    expect(t.spawned).toHaveLength(2) // B got its own worker rather than A's
    expect(callB.body.structuredContent.pid).toBe(pidOf(t, 'org-b'))
    expect(callB.body.structuredContent.pid).not.toBe(pidOf(t, 'org-a'))

    const callA = await t.admin('POST', '/orgs/org-a/plugins/env-probe/mcp/call', { toolName: 'whoami', arguments: {} })
    expect(callA.body.structuredContent).toMatchObject({ orgId: 'org-a', pid: pidOf(t, 'org-a'), config: { token: 'token-a' } })
    expect((await t.admin('GET', '/orgs/org-b/plugins/env-probe/mcp/tools')).body.tools.map((x: { name: string }) => x.name)).toEqual([
      'whoami',
    ])

    // A disabled org's tools are not reachable, and calling them starts nothing.
    await t.admin('PUT', '/orgs/org-c/plugins/env-probe', { enabled: false })
    const callC = await t.admin('POST', '/orgs/org-c/plugins/env-probe/mcp/call', { toolName: 'whoami', arguments: {} })
    expect(callC).toMatchObject({ status: 404, body: { error: { code: 'INSTANCE_DISABLED' } } })
    expect(t.spawned).toHaveLength(2)
  })
})
