import { assert, describe, it } from "@effect/vitest"
import * as Path from "node:path"
import { readRepository, specifiers, violations } from "./ImportBoundaries.ts"

const root = Path.resolve(import.meta.dirname, "../..")

/**
 * Barrels whose index loads modules no role uses: `@effect/platform-node`'s re-exports NodeRedis (the `redis` client,
 * ~750 modules of the CLI's 2,214 at start) and the cluster modules. Import their modules by path
 * (`@effect/platform-node/NodeRuntime`).
 */
const HEAVY_BARRELS: ReadonlySet<string> = new Set(["@effect/platform-node"])
const barrelImports = (files: ReadonlyArray<{ readonly path: string; readonly text: string }>) =>
  files.flatMap((file) => specifiers(file.text).filter((s) => HEAVY_BARRELS.has(s)).map((s) => `${file.path}: ${s}`))

describe("package boundaries", () => {
  it("every import under packages/ and apps/ points down, through an index, and is declared", () => {
    const { workspaces, files } = readRepository(root)
    assert.isAbove(workspaces.length, 8)
    assert.isAbove(files.length, 100)
    assert.deepStrictEqual(violations(workspaces, files), [])
  })

  it("fails on an import that points up or sideways, a deep import, an undeclared one, and a relative reach", () => {
    const workspaces = [
      { dir: "packages/domain", name: "@cowork/domain", dependencies: [], exports: ["."] },
      { dir: "packages/services", name: "@cowork/services", dependencies: ["@cowork/domain"], exports: [".", "./*"] },
      { dir: "packages/postgres", name: "@cowork/postgres", dependencies: ["@cowork/services"], exports: ["."] },
      { dir: "apps/web", name: "@cowork/web", dependencies: [], exports: ["."] },
      { dir: "apps/worker", name: "@cowork/worker", dependencies: ["@cowork/services"], exports: ["."] }
    ]
    const found = violations(workspaces, [
      { path: "packages/services/src/A.ts", text: `import { WebRole } from "@cowork/web"\nimport { x } from "@cowork/domain"` },
      { path: "packages/postgres/src/B.ts", text: `export * from "@cowork/services/LeaseStore"\nimport type { D } from "@cowork/domain"` },
      { path: "apps/worker/src/C.ts", text: `const web = await import("@cowork/web")` },
      { path: "apps/worker/test/D.test.ts", text: `import { routes } from "../../web/src/WebRole.ts"` },
      { path: "packages/domain/src/E.ts", text: `import "./Local.ts"` }
    ])
    assert.deepStrictEqual(found, [
      "@cowork/services exports more than its index: ., ./*",
      "packages/services/src/A.ts: @cowork/services may not import @cowork/web (up or sideways)",
      "packages/postgres/src/B.ts: deep import @cowork/services/LeaseStore (import \"@cowork/services\")",
      "packages/postgres/src/B.ts: @cowork/domain is not in packages/postgres/package.json dependencies",
      "apps/worker/src/C.ts: @cowork/worker may not import @cowork/web (up or sideways)",
      "apps/worker/test/D.test.ts: @cowork/worker may not reach into apps/web (../../web/src/WebRole.ts)"
    ])
  })

  it("no file imports a heavy barrel (its modules by path instead)", () => {
    const { files } = readRepository(root)
    assert.deepStrictEqual(barrelImports(files), [])
    assert.deepStrictEqual(
      barrelImports([
        { path: "apps/web/src/main.ts", text: `import { NodeRuntime } from "@effect/platform-node"` },
        { path: "apps/web/src/ok.ts", text: `import * as NodeRuntime from "@effect/platform-node/NodeRuntime"` }
      ]),
      ["apps/web/src/main.ts: @effect/platform-node"]
    )
  })

  it("reads static, type-only, re-export, side-effect and dynamic specifiers", () => {
    assert.deepStrictEqual(specifiers(`import { a } from "x"\nimport type { B } from 'y'\nexport * as Z from "z"\nimport "side"\nconst m = await import("dyn")`), [
      "x", "y", "z", "side", "dyn"
    ])
  })
})
