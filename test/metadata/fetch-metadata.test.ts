import { describe, expect, it } from 'vitest'
import { METADATA_FETCH_DEFAULTS } from '../../src/config.js'
import { fetchMetadata } from '../../src/metadata/index.js'
import { createManualClock } from '../helpers/manual-clock.js'
import type { ManualClock } from '../helpers/manual-clock.js'
import { goodMetadata, invalidMetadata } from './fixtures.js'
import { closedPort, dispatcherTo, json, startPeer } from './peer.js'

/** Waits for the code under test to set each timer (backoff or deadline), then lets it fire. */
async function elapse(clock: ManualClock, ...delaysMs: number[]): Promise<void> {
  for (const ms of delaysMs) {
    await clock.waitForTimer((t) => t.ms === ms)
    clock.advance(ms)
  }
}

describe('fetchMetadata', () => {
  it('returns the validated metadata, filling contract defaults', async () => {
    const clock = createManualClock()
    const peer = await startPeer(() => json({ configSchema: goodMetadata.configSchema, routes: [{ method: 'post', path: '/webhook' }] }))

    const result = await fetchMetadata({ ...METADATA_FETCH_DEFAULTS, dispatcher: peer.dispatcher, clock })
    expect(result).toEqual({
      ok: true,
      attempts: 1,
      metadata: {
        configSchema: goodMetadata.configSchema,
        authMethods: [],
        uiExtensions: [],
        pages: [],
        routes: [{ method: 'POST', path: '/webhook' }],
        mcp: { local: [], external: [] },
      },
    })
    expect(peer.requests()).toBe(1)
    expect(clock.pending()).toEqual([]) // the deadline timer was cleared
  })

  it('retries after failures with the 1 s / 2 s backoff and succeeds on the third attempt', async () => {
    const clock = createManualClock()
    const peer = await startPeer((n) => (n < 3 ? json({ error: 'warming up' }, 500) : json(goodMetadata)))

    const result = fetchMetadata({ ...METADATA_FETCH_DEFAULTS, dispatcher: peer.dispatcher, clock })
    await elapse(clock, 1_000, 2_000)
    expect(await result).toEqual({ ok: true, attempts: 3, metadata: goodMetadata })
    expect(peer.requests()).toBe(3)
  })

  it('gives up after 3 failed attempts with the HTTP status as the reason', async () => {
    const clock = createManualClock()
    const peer = await startPeer(() => json({ error: 'boom' }, 500))

    const result = fetchMetadata({ ...METADATA_FETCH_DEFAULTS, dispatcher: peer.dispatcher, clock })
    await elapse(clock, 1_000, 2_000)
    expect(await result).toMatchObject({ ok: false, reason: 'http-status', attempts: 3 })
    expect(peer.requests()).toBe(3)
    expect(clock.pending()).toEqual([]) // no backoff after the final attempt
  })

  it('bounds each attempt with its own 5 s timeout when the worker never answers', async () => {
    const clock = createManualClock()
    const peer = await startPeer(() => 'hang')

    const result = fetchMetadata({ ...METADATA_FETCH_DEFAULTS, dispatcher: peer.dispatcher, clock })
    for (const [n, backoffMs] of [
      [1, 1_000],
      [2, 2_000],
      [3, 0],
    ] as const) {
      await peer.received(n) // the request is in the server's hands, unanswered
      await elapse(clock, 5_000)
      if (backoffMs > 0) await elapse(clock, backoffMs)
    }
    expect(await result).toMatchObject({ ok: false, reason: 'timeout', attempts: 3 })
    expect(peer.requests()).toBe(3)
  })

  it('reports invalid metadata as a failed state with the zod issues summarised', async () => {
    const clock = createManualClock()
    const peer = await startPeer(() => json(invalidMetadata))

    const result = fetchMetadata({ ...METADATA_FETCH_DEFAULTS, dispatcher: peer.dispatcher, clock, attempts: 1 })
    const outcome = await result
    expect(outcome).toMatchObject({ ok: false, reason: 'invalid-metadata', attempts: 1 })
    expect(!outcome.ok && outcome.error).toContain('configSchema.apiKey.type')
    expect(!outcome.ok && outcome.error).toContain('routes.0.path')
  })

  it('refuses declared routes with regular-expression syntax (the runner would not serve them) as invalid metadata', async () => {
    const clock = createManualClock()
    const routes = [
      { method: 'GET', path: '/items/:id' },
      { method: 'GET', path: '/items/:id{\\d+}' },
      { method: 'GET', path: '/n/:id(\\d+)' },
    ]
    const peer = await startPeer(() => json({ ...goodMetadata, routes }))

    const outcome = await fetchMetadata({ ...METADATA_FETCH_DEFAULTS, dispatcher: peer.dispatcher, clock, attempts: 1 })
    expect(outcome).toMatchObject({ ok: false, reason: 'invalid-metadata' })
    expect(!outcome.ok && outcome.error).toContain('routes.1.path')
    expect(!outcome.ok && outcome.error).toContain('routes.2.path')
    expect(!outcome.ok && outcome.error).not.toContain('routes.0')
  })

  it('refuses metadata nested deeper than anything real (it could not be stored) as invalid', async () => {
    const clock = createManualClock()
    const deep = `${'['.repeat(5_000)}${']'.repeat(5_000)}`
    const peer = await startPeer(() => ({ status: 200, body: `{"configSchema":{},"pages":[${deep}]}` }))

    const outcome = await fetchMetadata({ ...METADATA_FETCH_DEFAULTS, dispatcher: peer.dispatcher, clock, attempts: 1 })
    expect(outcome).toMatchObject({ ok: false, reason: 'invalid-metadata' })
    expect(!outcome.ok && outcome.error).toContain('nested deeper than 64 levels')
    const fine = await startPeer(() => json({ ...goodMetadata, pages: [[[{ a: [1] }]]] }))
    expect(await fetchMetadata({ ...METADATA_FETCH_DEFAULTS, dispatcher: fine.dispatcher, clock, attempts: 1 })).toMatchObject({ ok: true })
  })

  it('counts a body that is not JSON as a failure', async () => {
    const clock = createManualClock()
    const peer = await startPeer((n) => (n === 1 ? { status: 200, body: '{"configSchema": ' } : json(goodMetadata)))

    const result = fetchMetadata({ ...METADATA_FETCH_DEFAULTS, dispatcher: peer.dispatcher, clock, attempts: 1 })
    expect(await result).toMatchObject({ ok: false, reason: 'bad-json', attempts: 1 })
  })

  it('retries an invalid answer like any other failure', async () => {
    const clock = createManualClock()
    const peer = await startPeer((n) => (n === 1 ? json(invalidMetadata) : json(goodMetadata)))

    const result = fetchMetadata({ ...METADATA_FETCH_DEFAULTS, dispatcher: peer.dispatcher, clock })
    await elapse(clock, 1_000)
    expect(await result).toMatchObject({ ok: true, attempts: 2 })
  })

  it('rejects a body larger than maxBodyBytes', async () => {
    const clock = createManualClock()
    const peer = await startPeer(() => json({ ...goodMetadata, pages: ['x'.repeat(4_096)] }))
    const result = await fetchMetadata({ ...METADATA_FETCH_DEFAULTS, dispatcher: peer.dispatcher, clock, attempts: 1, maxBodyBytes: 1_024 })
    expect(result).toMatchObject({ ok: false, reason: 'too-large' })
  })

  it('reports a refused connection as a network failure', async () => {
    const clock = createManualClock()
    const port = await closedPort()
    const result = fetchMetadata({ ...METADATA_FETCH_DEFAULTS, dispatcher: dispatcherTo(port), clock, attempts: 2, backoffMs: [10] })
    await elapse(clock, 10)
    expect(await result).toMatchObject({ ok: false, reason: 'network', attempts: 2 })
  })

  it('stops at once when the caller aborts during the backoff', async () => {
    const clock = createManualClock()
    const peer = await startPeer(() => json({}, 503))
    const controller = new AbortController()

    const result = fetchMetadata({ ...METADATA_FETCH_DEFAULTS, dispatcher: peer.dispatcher, clock, signal: controller.signal })
    await clock.waitForTimer((t) => t.ms === 1_000)
    controller.abort()
    expect(await result).toMatchObject({ ok: false, reason: 'aborted', attempts: 1 })
    expect(peer.requests()).toBe(1)
    expect(clock.pending()).toEqual([])
  })
})
