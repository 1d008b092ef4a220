import { once } from 'node:events'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../src/config.js'
import { silentLogger } from '../../src/core/index.js'
import { startGateway } from '../../src/node/gateway.js'
import { EXAMPLES_DIR, TEST_SECRET_KEY, tempDir } from '../helpers/gateway.js'
import { createManualClock } from '../helpers/manual-clock.js'

it('a cluster gateway that cannot listen leaves no timer running: it no longer follows the catalog of the others', async () => {
  const taken = createServer().listen(0, '127.0.0.1')
  await once(taken, 'listening')
  onTestFinished(() => void taken.close())
  const dir = await tempDir()
  const config = loadConfig({
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    PORT: String((taken.address() as AddressInfo).port),
    DATABASE_URL: `file:${join(dir, 'gateway.db')}`,
    PLUGINS_DIR: EXAMPLES_DIR,
    SECRET_KEY: TEST_SECRET_KEY,
    CLUSTER_SECRET: 'cluster-secret-0123456789',
    PREWARM_POOL_SIZE: '0',
    LOG_LEVEL: 'silent',
  })
  const clock = createManualClock(Date.now())
  await expect(startGateway({ config, log: silentLogger, clock })).rejects.toMatchObject({ code: 'LISTEN_FAILED' })
  expect(clock.pending()).toEqual([])
})
