#!/usr/bin/env node
/**
 * The `cowork` command. Node's compile cache is switched on before anything else loads: the CLI's module graph
 * (Effect, the platform, the SQL client, every command) is parsed from source on each start otherwise — measured
 * 3.1 s CPU for `cowork --help` without it, 1.8 s from the cache (docs/benchmarks.md). It lives in Node's default
 * directory (`NODE_COMPILE_CACHE` overrides it, `NODE_DISABLE_COMPILE_CACHE=1` turns it off); a directory that
 * cannot be written just leaves it off.
 */
import { enableCompileCache } from "node:module"

enableCompileCache()
await import("./Cli.ts")
