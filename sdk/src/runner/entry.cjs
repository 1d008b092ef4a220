#!/usr/bin/env node
// The runner's executable, `sdk/dist/runner.cjs` (usage in main.ts). It runs the runner bundle
// (`runner-bundle.cjs`, main.ts and what it imports) with the V8 code cache `npm run build` made by
// running that bundle once (scripts/runner-code-cache.cjs): with it, V8 neither compiles the bundle
// nor, on the first request, the functions serving it, which cost a Node 20 cold start ~3 ms
// (BENCHMARKS.md). Node has no such cache for a CommonJS module on 20, hence this loader. V8 checks
// the cache against its own version, flags and the source's length, and compiles the bundle from
// source when they differ (another node binary, a `--max-old-space-size`) or when there is none.
'use strict'
const { readFileSync } = require('node:fs')
const { createRequire } = require('node:module')
const { join } = require('node:path')
const { Script } = require('node:vm')

const BUNDLE = join(__dirname, 'runner-bundle.cjs')
/** Written by the build beside the bundle, with the bundle; a worker only reads it. */
const CODE_CACHE = join(__dirname, 'runner-bundle.cache')

/**
 * The bundle compiled as Node compiles a CommonJS module, with its V8 code cache when one is given.
 * @param {Buffer} [cachedData]
 * @returns {import('node:vm').Script}
 */
function compileBundle(cachedData) {
  const source = readFileSync(BUNDLE, 'utf8')
  return new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: BUNDLE,
    ...(cachedData && { cachedData }),
  })
}

/**
 * Runs the compiled bundle as the module it is: its requires resolve from beside it.
 * @param {import('node:vm').Script} script
 */
function runBundle(script) {
  const bundle = { exports: {} }
  script.runInThisContext()(bundle.exports, createRequire(BUNDLE), bundle, BUNDLE, __dirname)
}

/** @returns {Buffer | undefined} */
function readCodeCache() {
  try {
    return readFileSync(CODE_CACHE)
  } catch {
    return undefined // not built (a build that could not run the bundle): compiled from source
  }
}

if (require.main === module) runBundle(compileBundle(readCodeCache()))
else module.exports = { CODE_CACHE, compileBundle, runBundle } // scripts/runner-code-cache.cjs
