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

  it('sandboxes workers by default, each with a uid of its own in group nogroup when the gateway is root, as its own user otherwise', () => {
    expect(loadConfig({}, '/', 0).pool.sandbox).toMatchObject({
      enabled: true,
      users: { uids: { min: 1879048192, max: 1879113727 }, gid: 65534 }, // 0x70000000-0x7000ffff
    })
    // One uid shared by every worker stays possible, when asked for.
    expect(loadConfig({ WORKER_UID: '65534' }, '/', 0).pool.sandbox.users).toEqual({ uids: { min: 65534, max: 65534 }, gid: 65534 })
    expect(loadConfig({}, '/', 1000).pool.sandbox).toMatchObject({ enabled: true, users: undefined })
    expect(loadConfig({ WORKER_SANDBOX: 'off' }, '/', 0).pool.sandbox).toMatchObject({ enabled: false, users: undefined })
    expect(loadConfig({ WORKER_UID: '100000-100200', WORKER_GID: '100000' }, '/', 0).pool.sandbox.users).toEqual({
      uids: { min: 100000, max: 100200 },
      gid: 100000,
    })
  })

  it.each([
    [{ WORKER_UID: '1001' }, 1000, /WORKER_UID: needs the gateway to run as root \(it runs as uid 1000\)/],
    [{ WORKER_GID: '1001', WORKER_SANDBOX: 'off' }, 0, /WORKER_GID: has no effect with WORKER_SANDBOX=off/],
    [{ WORKER_UID: '100000-100010' }, 0, /WORKER_UID: a range needs one uid per worker/],
    [{ WORKER_UID: '0' }, 0, /WORKER_UID: must be an ascending range of uids above 0/],
    [{ MAX_WORKERS: '65536' }, 0, /WORKER_UID: a range needs one uid per worker/], // the default range holds 65536
    [{ WORKER_SANDBOX: 'no' }, 0, /WORKER_SANDBOX/],
  ])('refuses worker user settings that cannot hold: %j as uid %i', (env, uid, message) => {
    expect(() => loadConfig(env, '/', uid)).toThrow(message)
  })
})
