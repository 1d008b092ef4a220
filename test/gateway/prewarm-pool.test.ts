import { describe, expect, it } from 'vitest'
import { GatewayError, silentLogger } from '../../src/core/index.js'
import { createPrewarmPool } from '../../src/workers/prewarm.js'

describe('the prewarmed pool', () => {
  it('goes on without a runner when none can be started for a policy (every uid of a WORKER_UID range in use)', async () => {
    let asked = 0
    const pool = createPrewarmPool({
      size: 1,
      spawn: () => {
        asked++
        throw new GatewayError('CAPACITY_EXHAUSTED', 503, 'every worker uid of WORKER_UID 1-2 is in use')
      },
      log: silentLogger,
    })
    const policy = { key: 'echo' }
    expect(() => pool.refill(policy, false)).not.toThrow() // called from a timer: a throw would end the gateway
    expect([asked, pool.ready(), pool.take(policy)]).toEqual([1, 0, undefined])
    await pool.close()
  })
})
