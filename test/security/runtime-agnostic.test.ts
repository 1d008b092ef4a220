import { existsSync, readFileSync } from 'node:fs'
import { dirname, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../helpers/gateway.js'

// STYLE.md §1: nothing reachable from src/app.ts imports node:* (or a Node-only package); runtime
// pieces such as the node:crypto secret box are injected by the Node entry.
const NODE_ONLY = /^(node:|undici$|pino$|@hono\/node-server|prom-client$|get-port$|shell-quote$|@libsql\/client)/
// Value imports and re-exports; `import type` / `export type` are erased and do not count.
const IMPORT = /^\s*(?:import|export)\s+(?!type\b)(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/gm

function runtimeImports(entry: string): { files: string[]; offending: string[] } {
  const seen = new Set<string>()
  const offending: string[] = []
  const visit = (file: string) => {
    if (seen.has(file)) return
    seen.add(file)
    for (const [, spec = ''] of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      if (NODE_ONLY.test(spec)) offending.push(`${relative(ROOT, file)} imports ${spec}`)
      if (!spec.startsWith('.')) continue
      const ts = resolve(dirname(file), spec).replace(/\.js$/, '.ts')
      visit(existsSync(ts) ? ts : ts.replace(/\.ts$/, '.tsx'))
    }
  }
  visit(entry)
  return { files: [...seen], offending }
}

describe('runtime-agnostic core', () => {
  // The app, and the service, registry and secrets doors it is built from (the edge entry reuses them).
  it.each(['src/app.ts', 'src/gateway/index.ts', 'src/registry/index.ts', 'src/secrets/index.ts'])(
    'reaches nothing Node-only from %s',
    (entry) => {
      const { files, offending } = runtimeImports(resolve(ROOT, entry))
      expect(files.length).toBeGreaterThan(0)
      expect(offending).toEqual([])
    },
  )

  it('keeps node:crypto and the key file in the Node adapter of secrets', () => {
    expect(runtimeImports(resolve(ROOT, 'src/secrets/node/index.ts')).offending).toEqual([
      'src/secrets/node/aes-gcm.ts imports node:crypto',
      'src/secrets/node/generated-key.ts imports node:path',
      'src/secrets/node/key-file.ts imports node:crypto',
      'src/secrets/node/key-file.ts imports node:fs',
      'src/secrets/node/key-file.ts imports node:path',
    ])
  })
})
