import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../../src/config.js'

describe('configuration from the environment', () => {
  it('refuses a millisecond setting a timer cannot hold, naming it (it would fire after 1 ms instead)', () => {
    for (const name of ['IDLE_TIMEOUT_MS', 'START_TIMEOUT_MS', 'STOP_TIMEOUT_MS', 'DRAIN_TIMEOUT_MS', 'HEARTBEAT_MS', 'LEASE_TTL_MS']) {
      expect(() => loadConfig({ [name]: '3000000000' })).toThrow(ConfigError)
      expect(() => loadConfig({ [name]: '3000000000' })).toThrow(new RegExp(`${name}: .*2147483647`))
    }
    expect(() => loadConfig({ METADATA_BACKOFF_MS: '1000,3000000000' })).toThrow(
      /METADATA_BACKOFF_MS: each value must be at most 2147483647/,
    )
    expect(loadConfig({ IDLE_TIMEOUT_MS: '2147483647' }).pool.idleMs).toBe(2_147_483_647)
  })
})
