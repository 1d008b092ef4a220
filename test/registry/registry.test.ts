import { describe, expect, it } from 'vitest'
import { registryWithHeldReads } from '../helpers/held-reads.js'

describe('Registry instance cache', () => {
  it('neither caches nor answers a read that a write overtook: the write is what every reader sees', async () => {
    const { registry, held } = await registryWithHeldReads()

    const slowRead = registry.instance('acme', 'echo')
    await held.readDone // it holds the row as it was before the write below
    await registry.saveInstance('acme', 'echo', { enabled: false })
    held.release()
    expect((await slowRead)?.enabled).toBe(false)
    expect((await registry.instance('acme', 'echo'))?.enabled).toBe(false)
  })
})
