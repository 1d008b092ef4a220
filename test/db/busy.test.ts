import { describe, expect, it } from 'vitest'
import { createInstancesRepo, isBusyError, withBusyRetry } from '../../src/db/index.js'
import { createManualClock } from '../helpers/manual-clock.js'
import { openTempDb } from './harness.js'

const busy = () => Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' })

describe('withBusyRetry', () => {
  it('recognises a real SQLITE_BUSY from a second gateway and retries after the lock is released', async () => {
    const clock = createManualClock()
    const holder = await openTempDb()
    // No busy timeout on the second connection: contention surfaces at once as SQLITE_BUSY.
    const contender = await openTempDb({ dir: holder.dir, url: holder.url, busyTimeoutMs: 0 })
    const repo = createInstancesRepo(contender.db, clock)

    const tx = await holder.client.transaction('write')
    const blocked = await contender.client
      .execute("insert into plugin_instances (org_id, plugin_id, created_at, updated_at) values ('x', 'y', 1, 1)")
      .catch((err: unknown) => err)
    expect(blocked).toMatchObject({ code: 'SQLITE_BUSY' })
    expect(isBusyError(blocked)).toBe(true)

    const retried = repo.upsert('acme', 'echo', { enabled: true })
    await clock.waitForTimer() // the first try failed and a backoff is pending
    await tx.commit()
    clock.advance(1_000)
    await expect(retried).resolves.toMatchObject({ orgId: 'acme', pluginId: 'echo', enabled: true })
  })

  it('retries busy errors (also when wrapped as a cause) until one succeeds', async () => {
    const clock = createManualClock()
    let calls = 0
    const result = withBusyRetry(
      async () => {
        calls++
        if (calls === 1) throw busy()
        if (calls === 2) throw new Error('Failed query', { cause: busy() })
        return 'ok'
      },
      { clock, attempts: 5, backoffMs: [10] },
    )
    await clock.waitForTimer((t) => t.ms === 10)
    clock.advance(10)
    await clock.waitForTimer((t) => t.ms === 10)
    clock.advance(10)
    await expect(result).resolves.toBe('ok')
    expect(calls).toBe(3)
  })

  it('rethrows other errors without retrying', async () => {
    const clock = createManualClock()
    let calls = 0
    const failure = Object.assign(new Error('constraint'), { code: 'SQLITE_CONSTRAINT' })
    await expect(
      withBusyRetry(
        async () => {
          calls++
          throw failure
        },
        { clock },
      ),
    ).rejects.toBe(failure)
    expect(calls).toBe(1)
  })

  it('gives up after the given number of attempts with the last busy error', async () => {
    const clock = createManualClock()
    let calls = 0
    const result = withBusyRetry(
      async () => {
        calls++
        throw busy()
      },
      { clock, attempts: 2, backoffMs: [5] },
    ).catch((err: unknown) => err)
    await clock.waitForTimer()
    clock.advance(5)
    expect(isBusyError(await result)).toBe(true)
    expect(calls).toBe(2)
  })
})
